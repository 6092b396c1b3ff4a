"""The feature file's optional per-row `split`: read where it is, checked, and absent
from files that have none (they read as before)."""

from __future__ import annotations

from pathlib import Path

import h5py
import pytest

from extract.featurefile import FeatureFileError, read_features, read_header
from tests.helpers.featurefiles import write_feature_file
from tests.helpers.layouts import write_split_file


def test_files_without_a_split_read_as_before(tmp_path: Path) -> None:
    path = write_feature_file(tmp_path / "f.h5", counts=[3, 3])
    assert read_features(path).split is None and read_header(path).split is None


def test_the_split_reads_in_row_order(tmp_path: Path) -> None:
    split = ["train", "val", "test"] * 2
    path = write_split_file(tmp_path / "f.h5", split, [3, 3])
    assert read_features(path).split == split
    assert read_header(path).attrs["split_source"] == "folders"


@pytest.mark.parametrize(("split", "message"), [
    (["train", "holdout", "test"] * 2, "'split' holds 'holdout'; its values are train, val, test"),
    (["train"] * 5, "'split' has 5 rows, the features 6"),
])
def test_a_damaged_split_is_refused_in_one_line(tmp_path: Path, split: list[str],
                                                message: str) -> None:
    path = write_feature_file(tmp_path / "f.h5", counts=[3, 3])
    with h5py.File(path, "r+") as f:
        f.create_dataset("split", data=split, dtype=h5py.string_dtype())
    with pytest.raises(FeatureFileError, match=f"{path}: {message}"):
        read_features(path)
