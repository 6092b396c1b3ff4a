"""The dataset changes while a partial file from a killed run exists.

The rerun must see the change, start a new file rather than resume the old one, and end
with exactly what a clean run on the new folder writes. The images are uncompressed PNGs
so that a rewritten image keeps its size: only its mtime gives the change away.
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest
from faultkit import (
    assert_same_file,
    extract_args,
    extract_here,
    rows_lost,
    run_launcher,
    save_uncompressed_png,
)
from imagefolders import class_image

from extract import store
from extract.scan import scan


@pytest.fixture(scope="module")
def killed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A folder (3 classes x 6 PNGs) and the partial file of a run killed after block 2."""
    base = tmp_path_factory.mktemp("changes")
    root = base / "data"
    for label in range(3):
        (root / f"class_{label}").mkdir(parents=True)
        for index in range(6):
            save_uncompressed_png(class_image(label, index),
                                  root / f"class_{label}" / f"img_{index}.png")
    partial = base / "partial.h5"
    result = run_launcher("kill-between-blocks", extract_args(root, partial))
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    assert store.read_attrs(partial)["n_written"] == 10
    return root, partial


def _change(root: Path, change: str) -> None:
    """Alter rows the partial file already holds (class_0 comes first)."""
    if change == "added":
        save_uncompressed_png(class_image(2, 9), root / "class_0" / "img_0a.png")
    elif change == "removed":
        os.remove(root / "class_0" / "img_1.png")
    else:  # rewritten: same name, same size, other pixels, a later mtime
        target = root / "class_0" / "img_2.png"
        size, mtime = target.stat().st_size, target.stat().st_mtime_ns
        save_uncompressed_png(class_image(1, 7), target)
        os.utime(target, ns=(mtime + 10**9, mtime + 10**9))
        assert target.stat().st_size == size


@pytest.mark.parametrize("change", ["added", "removed", "rewritten"])
def test_changed_folder_is_never_mixed_into_the_partial_file(
    change: str, killed: tuple[Path, Path], tmp_path: Path, ledger
) -> None:
    source, partial = killed
    root = tmp_path / "data"
    shutil.copytree(source, root)  # copy2: sizes and mtimes kept, so nothing changed yet
    out = tmp_path / "features.h5"
    shutil.copy2(partial, out)
    assert scan(root).fingerprint == store.read_attrs(out)["dataset_fingerprint"]

    _change(root, change)
    rerun = extract_here(extract_args(root, out))
    clean = tmp_path / "clean.h5"
    assert extract_here(extract_args(root, clean)).exit_code == 0
    lost = rows_lost(out, clean) if rerun.exit_code == 0 else len(scan(root))
    ledger.record(f"dataset {change} while partial", recovered=rerun.exit_code == 0 and lost == 0,
                  rows_lost=lost)
    assert rerun.exit_code == 0, rerun.output
    assert "dataset or settings changed; extracting anew" in rerun.output
    assert "resuming" not in rerun.output
    assert store.read_attrs(out)["dataset_fingerprint"] == scan(root).fingerprint
    assert_same_file(out, clean)
