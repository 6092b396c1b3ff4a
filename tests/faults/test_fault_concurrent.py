"""Two `extract` processes at once on the same dataset.

With the same settings they would write the same file: the second is refused with one
line (another extract is writing this file), touches nothing, and the first finishes
as if alone. With other settings they write different files and both succeed, neither
waiting for the other.
"""

from __future__ import annotations

import selectors
import subprocess
import sys
import time
from pathlib import Path

from extract import parts
from tests.helpers.faultkit import (
    LAUNCHER,
    TIMEOUT_S,
    assert_one_error_line,
    assert_same_file,
    contents,
    extract_args,
    extract_here,
    rows_lost,
    run_extract,
    snapshot,
)


def _wait_for_line(child: subprocess.Popen, marker: str, timeout: float) -> None:
    """Read the child's stdout until a line equals `marker` (or fail at `timeout`)."""
    deadline = time.monotonic() + timeout
    selector = selectors.DefaultSelector()
    selector.register(child.stdout, selectors.EVENT_READ)
    seen = []
    while time.monotonic() < deadline:
        if not selector.select(timeout=deadline - time.monotonic()):
            break
        line = child.stdout.readline()
        if not line:
            break  # the child ended without pausing
        seen.append(line)
        if line.strip() == marker:
            return
    raise AssertionError(f"child never printed {marker!r}; stdout so far: {seen}")


def test_same_settings_refused_other_settings_run_alongside(
    standard: tuple[Path, Path], tmp_path: Path, ledger
) -> None:
    root, reference = standard
    features = tmp_path / "outputs" / "features"
    args = extract_args(root, None)  # the default output: its name says the settings
    # The first holds the lock, its first part written but not yet published, until
    # we let it go.
    first = subprocess.Popen([sys.executable, str(LAUNCHER), "pause-holding-lock", "--",
                              *args], cwd=tmp_path, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        _wait_for_line(first, "PAUSED", TIMEOUT_S)
        (folder,) = features.glob("*.parts")
        out = features / (folder.name.removesuffix(".parts") + ".h5")
        before = snapshot(features)
        for extra in ([], ["--force"]):
            second = run_extract([*args, *extra], cwd=tmp_path)
            assert second.returncode == 1, second.stderr[-2000:]
            assert_one_error_line(second.stderr, f"{out}: another extract is writing this "
                                                 "file; wait for it to finish, or pick "
                                                 "another --output")
            assert snapshot(features) == before
        ledger.record("same settings at the same time", recovered=True)

        other = run_extract(extract_args(root, None, size=48), cwd=tmp_path)
        assert other.returncode == 0, other.stderr[-2000:]
        assert "created: 24 rows, 1 skipped" in other.stdout

        first.stdin.write("\n")
        first.stdin.flush()
        assert first.wait(TIMEOUT_S) == 0
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    files = sorted(features.iterdir())
    assert len(files) == 2 and out in files, files  # two feature files, nothing else
    (out48,) = set(files) - {out}
    reference48 = tmp_path / "reference48.h5"
    assert extract_here(extract_args(root, reference48, size=48)).exit_code == 0
    lost = rows_lost(contents(out), contents(reference))
    lost += rows_lost(contents(out48), contents(reference48))
    ledger.record("other settings at the same time", recovered=lost == 0, rows_lost=lost)
    assert_same_file(out, reference)
    assert_same_file(out48, reference48)
    assert not parts.folder(out).exists() and not parts.folder(out48).exists()
