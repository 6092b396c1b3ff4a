"""Fusion refusals say what differs: the folders, or the classes (issue 26, item 5)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from extract.consolidate import FeatureFileWriter
from tests.helpers.classifying import assert_one_line_error, run
from tests.helpers.featurefiles import ATTRS


def _write(path: Path, classes: Sequence[str], *, root: str, fingerprint: str) -> Path:
    """Ten images per class under `root`, as extract records them."""
    rng = np.random.default_rng(0)
    writer = FeatureFileWriter(
        path, feature_dim=4, label_names=list(classes),
        attrs={**ATTRS, "dataset_root": root, "dataset_fingerprint": fingerprint},
        buffer_size=50,
    )
    for label, name in enumerate(classes):
        for i in range(10):
            writer.add(rng.normal(size=4).astype(np.float32), label, f"{name}/{i:04d}.jpg")
    writer.finish()
    return path


FIVE = ["bluebell", "daffodil", "daisy", "sunflower", "tulip"]


def test_files_of_two_folders_are_told_so_not_to_extract_again(outputs: Path) -> None:
    a = _write(outputs / "features" / "a.h5", FIVE, root="/data/flowers", fingerprint="one")
    b = _write(outputs / "features" / "b.h5", FIVE, root="/data/other", fingerprint="two")
    result = run(outputs, "--features", str(a), "--features", str(b))
    assert_one_line_error(result, f"{b}: images from different folders "
                                  "(/data/other vs /data/flowers); fuse files extracted")
    assert "another version" not in result.output


def test_the_same_folder_changed_since_is_still_told_to_extract_again(outputs: Path) -> None:
    a = _write(outputs / "features" / "a.h5", FIVE, root="/data/flowers", fingerprint="one")
    b = _write(outputs / "features" / "b.h5", FIVE, root="/data/flowers", fingerprint="two")
    result = run(outputs, "--features", str(a), "--features", str(b))
    assert_one_line_error(result, f"{b}: extracted from another version of the images")


def test_two_classes_against_five_are_different_classes(outputs: Path) -> None:
    a = _write(outputs / "features" / "a.h5", FIVE, root="/data/flowers", fingerprint="one")
    b = _write(outputs / "features" / "b.h5", ["daisy", "tulip"], root="/data/two",
               fingerprint="two")
    result = run(outputs, "--features", str(a), "--features", str(b))
    assert_one_line_error(result, f"{b}: different classes (2 vs 5 in {a}; missing here: "
                                  "'bluebell', 'daffodil', 'sunflower'), images from "
                                  "different folders (/data/two vs /data/flowers)")
    assert "class 1 is" not in result.output
