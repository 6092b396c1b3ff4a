"""SIGKILL of the real `extract` at exact points of its write path.

Whatever point the kill lands on, the file left behind is never taken for a complete
one, and the next run (same command) resumes or restarts and ends with the file an
uninterrupted run writes: same rows, order and values, bit for bit. (A kill at a
random moment, found by polling, is tests/test_resume.py.)
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from faultkit import (
    assert_same_file,
    extract_args,
    raw_rows,
    rerun_and_record,
    rows_lost,
    run_launcher,
)

from extract import store

# point -> (n_scanned, n_written, rows physically in `features`) on disk after the kill;
# None when the output does not exist yet. Blocks are 5 rows; image 12 is unreadable.
POINTS = {
    "kill-creating": None,  # header written to <output>.new, not yet renamed
    "kill-before-first-block": (0, 0, 0),
    "kill-mid-block": (5, 5, 10),  # block 2's rows on disk, n_written not yet past them
    "kill-between-blocks": (10, 10, 10),
    "kill-setting-complete": (25, 24, 24),  # every row on disk, complete not yet set
}


@pytest.mark.parametrize("point", POINTS)
def test_sigkill_then_rerun_ends_with_the_uninterrupted_file(
    point: str, standard: tuple[Path, Path], tmp_path: Path, ledger
) -> None:
    root, reference = standard
    out = tmp_path / "features.h5"
    args = extract_args(root, out)

    killed = run_launcher(point, args)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]

    accepted = 0
    expected = POINTS[point]
    if expected is None:
        assert not out.exists()
        assert out.with_name(out.name + ".new").exists()
    else:
        attrs = store.read_attrs(out)
        assert (attrs["n_scanned"], attrs["n_written"], raw_rows(out)) == expected
        assert attrs["complete"] is False
        try:
            store.read_features(out)
            accepted = 1
        except store.FeatureFileError as exc:
            assert "partial extraction" in str(exc)

    rerun = rerun_and_record(args, out, reference, ledger, f"SIGKILL {point}", all_rows=24,
                             partial_accepted=accepted)
    assert accepted == 0
    assert rerun.exit_code == 0, rerun.output
    if expected is None:
        assert "extracted: 24 images written, 1 skipped" in rerun.output
    else:
        assert f"resuming after {expected[0]} of 25 images" in rerun.output
        assert "resumed: 24 images written, 1 skipped" in rerun.output
    assert not out.with_name(out.name + ".new").exists()
    assert_same_file(out, reference)
    assert rows_lost(out, reference) == 0
