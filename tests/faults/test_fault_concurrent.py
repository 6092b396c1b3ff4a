"""Two `extract` processes on the same output: the second is refused with the lock
message (not an HDF5 locking error, not a misleading first line), touches nothing, and
the first finishes the file as if alone."""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import time
from pathlib import Path

from faultkit import (
    LAUNCHER,
    TIMEOUT_S,
    assert_one_error_line,
    assert_same_file,
    extract_args,
    rows_lost,
    run_extract,
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


def test_second_writer_is_refused_and_first_finishes_alone(
    standard: tuple[Path, Path], tmp_path: Path, ledger
) -> None:
    root, reference = standard
    out = tmp_path / "features.h5"
    args = extract_args(root, out)
    # The first process holds the lock with the file open for writing, paused just
    # before its first block, until we let it go.
    first = subprocess.Popen([sys.executable, str(LAUNCHER), "pause-holding-lock", "--", *args],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    try:
        _wait_for_line(first, "PAUSED", TIMEOUT_S)
        before = os.stat(out)
        for extra in ([], ["--force"]):
            second = run_extract([*args, *extra])
            assert second.returncode == 1, second.stderr[-2000:]
            assert_one_error_line(second.stderr, f"{out}: another extract is writing this file; "
                                                 "wait for it or pick --output")
            assert "unable to lock" not in second.stderr  # HDF5's own file locking
            assert "extracting anew" not in second.stdout, second.stdout
            after = os.stat(out)
            assert (after.st_size, after.st_mtime_ns, after.st_ino) == (
                before.st_size, before.st_mtime_ns, before.st_ino)
        first.stdin.write("\n")
        first.stdin.flush()
        assert first.wait(TIMEOUT_S) == 0
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    lost = rows_lost(out, reference)
    ledger.record("second writer on the same output", recovered=lost == 0, rows_lost=lost)
    assert_same_file(out, reference)
