"""The disk filling up: RLIMIT_FSIZE in the child (SIGXFSZ ignored), so a write past the
limit fails with EFBIG exactly as it would with ENOSPC on a full disk.

`extract` must stop with one clear line naming the file, leave it resumable (never
complete) or absent, and a rerun with room must finish with the right rows.
"""

from __future__ import annotations

import resource
import signal
from pathlib import Path

import pytest
from faultkit import (
    assert_one_error_line,
    assert_same_file,
    extract_args,
    extract_here,
    rerun_and_record,
    run_extract,
)

from extract import store


def _file_size_limit(nbytes: int):
    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))

    return limit


@pytest.fixture(scope="module")
def reference64(standard: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The standard folder at 64x64 (2,048 features a row): blocks big enough that the
    limit below falls part-way through the run."""
    root, _ = standard
    out = tmp_path_factory.mktemp("disk") / "reference64.h5"
    assert extract_here(extract_args(root, out, size=64)).exit_code == 0
    return out


def test_disk_full_part_way_leaves_a_resumable_file(
    standard: tuple[Path, Path], reference64: Path, tmp_path: Path, ledger
) -> None:
    root, _ = standard
    out = tmp_path / "features.h5"
    args = extract_args(root, out, size=64)
    # ~1.2 MB is reserved ahead of each 40 KB block, the whole file is ~250 KB: a limit
    # of 1.37 MB lets the first blocks through and stops a later one.
    full = run_extract(args, preexec_fn=_file_size_limit(1_370_000))
    assert full.returncode == 1, full.stderr[-2000:]
    assert_one_error_line(full.stderr, f"{out}: cannot write the next block (File too large)",
                          "images are safely in the file",
                          "run the same command again to resume")
    attrs = store.read_attrs(out)
    assert attrs["complete"] is False
    assert 0 < attrs["n_written"] < 24, attrs["n_written"]
    assert f"{attrs['n_written']} images are safely in the file" in full.stderr
    with pytest.raises(store.FeatureFileError, match="partial extraction"):
        store.read_features(out)

    rerun = rerun_and_record(args, out, reference64, ledger, "disk full part-way (EFBIG)",
                             all_rows=24)
    assert rerun.exit_code == 0, rerun.output
    assert f"resuming after {attrs['n_scanned']} of 25 images" in rerun.output
    assert_same_file(out, reference64)


def test_disk_full_before_the_file_exists(
    standard: tuple[Path, Path], tmp_path: Path, ledger
) -> None:
    root, reference = standard
    out = tmp_path / "features.h5"
    args = extract_args(root, out)
    full = run_extract(args, preexec_fn=_file_size_limit(4096))
    assert full.returncode == 1, full.stderr[-2000:]
    assert_one_error_line(full.stderr, f"{out}: cannot create the feature file (File too large)")
    assert not out.exists() and not out.with_name(out.name + ".new").exists()

    rerun = rerun_and_record(args, out, reference, ledger, "disk full at start (EFBIG)",
                             all_rows=24)
    assert rerun.exit_code == 0, rerun.output
    assert_same_file(out, reference)
