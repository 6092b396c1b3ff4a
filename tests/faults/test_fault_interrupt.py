"""Ctrl-C (a real SIGINT) stops `extract` cleanly: one line saying which shards are
kept and that rerunning resumes, exit status 130, no traceback; the rerun computes
only the shards that were not finished and ends with the uninterrupted file."""

from __future__ import annotations

import re
from pathlib import Path

from extract import parts
from tests.helpers.faultkit import (
    assert_same_file,
    extract_args,
    rerun_and_record,
    run_launcher,
    user_lines,
)

KEPT = re.compile(r"^interrupted: (\d+) finished shard\(s\) are kept in (.+)/; run the same "
                  r"command again to resume$")
NONE_YET = "interrupted: no shard was finished yet; run the same command again"


def _last_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = user_lines(stderr)
    assert not [line for line in lines if line.startswith("Error")], lines
    assert sum(line.startswith("interrupted") for line in lines) == 1, lines
    return lines[-1]


def test_ctrl_c_while_tensorflow_runs(standard: tuple[Path, Path], tmp_path: Path,
                                      ledger) -> None:
    """The signal comes from a tf.data worker while the main thread is inside TensorFlow,
    two shards complete and the third part-way."""
    root, reference = standard
    out = tmp_path / "features.h5"
    args = extract_args(root, out)

    stopped = run_launcher("sigint-in-tensorflow", args)
    assert stopped.returncode == 130, stopped.stderr[-2000:]
    line = KEPT.match(_last_line(stopped.stderr))
    assert line, stopped.stderr[-2000:]
    kept = sorted(parts.folder(out).glob("*.h5"))
    assert (int(line.group(1)), line.group(2)) == (len(kept), str(parts.folder(out)))
    assert len(kept) == 2  # the shards of 4 and 8 images
    assert not list(parts.folder(out).glob("*.tmp"))  # the third's unfinished part dropped
    assert not out.exists()

    rerun = rerun_and_record(args, out, reference, ledger, "SIGINT while TensorFlow runs")
    assert rerun.exit_code == 0, rerun.output
    assert f"resuming: 2 of 4 shards are already in {parts.folder(out)}/" in rerun.output
    assert "resumed: 24 rows, 1 skipped" in rerun.output
    # 25 images less the kept 4 + 8
    assert "; 13 computed, 12 from the interrupted run's parts, 0 reused;" in rerun.output
    assert_same_file(out, reference)
    assert not parts.folder(out).exists()


def test_ctrl_c_while_scanning(standard: tuple[Path, Path], tmp_path: Path, ledger) -> None:
    root, _ = standard
    out = tmp_path / "features.h5"
    stopped = run_launcher("sigint-in-scan", extract_args(root, out))
    ledger.record("SIGINT while scanning", recovered=stopped.returncode == 130)
    assert stopped.returncode == 130, stopped.stderr[-2000:]
    assert _last_line(stopped.stderr) == NONE_YET
    assert list(tmp_path.iterdir()) == []
