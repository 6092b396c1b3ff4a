"""Ctrl-C (a real SIGINT) stops `extract` cleanly: one line saying how far it got and
that rerunning resumes, exit status 130, no traceback, and nothing computed is lost."""

from __future__ import annotations

import re
from pathlib import Path

from faultkit import (
    assert_same_file,
    extract_args,
    rerun_and_record,
    run_launcher,
    user_lines,
)

from extract import store

INTERRUPTED = re.compile(
    r"^interrupted: (\d+) images are safely in (.+); run the same command again to resume$"
)


def _interrupted_line(stderr: str) -> re.Match[str]:
    assert "Traceback" not in stderr, stderr
    lines = user_lines(stderr)
    assert not [line for line in lines if line.startswith("Error")], lines
    assert lines and INTERRUPTED.match(lines[-1]), lines
    assert sum(bool(INTERRUPTED.match(line)) for line in lines) == 1, lines
    return INTERRUPTED.match(lines[-1])


def test_ctrl_c_while_tensorflow_runs(standard: tuple[Path, Path], tmp_path: Path, ledger) -> None:
    """The signal comes from a tf.data worker while the main thread is inside TensorFlow,
    with one block on disk and rows waiting in the buffer."""
    root, reference = standard
    out = tmp_path / "features.h5"
    args = extract_args(root, out)

    stopped = run_launcher("sigint-in-tensorflow", args)
    assert stopped.returncode == 130, stopped.stderr[-2000:]
    line = _interrupted_line(stopped.stderr)
    said = int(line.group(1))
    assert line.group(2) == str(out)
    attrs = store.read_attrs(out)
    assert attrs["n_written"] == said  # what the message says is what the file holds
    assert 7 <= said < 24  # the buffered rows were written, not dropped
    assert attrs["complete"] is False

    rerun = rerun_and_record(args, out, reference, ledger, "SIGINT while TensorFlow runs",
                             all_rows=24)
    assert rerun.exit_code == 0, rerun.output
    assert f"resuming after {attrs['n_scanned']} of 25 images" in rerun.output
    assert_same_file(out, reference)


def test_ctrl_c_while_scanning_names_the_output(
    standard: tuple[Path, Path], tmp_path: Path, ledger
) -> None:
    """Before any file exists the message still names where the rows will go."""
    root, _ = standard
    out = tmp_path / "features.h5"
    stopped = run_launcher("sigint-in-scan", extract_args(root, out))
    ledger.record("SIGINT while scanning", recovered=stopped.returncode == 130)
    assert stopped.returncode == 130, stopped.stderr[-2000:]
    line = _interrupted_line(stopped.stderr)
    assert (line.group(1), line.group(2)) == ("0", str(out))
    assert not out.exists()
