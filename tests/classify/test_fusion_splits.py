"""Fusing files of the same images that carry a given split: the split goes along, and
files whose splits disagree are refused in one line."""

from __future__ import annotations

from pathlib import Path

from classify.fusion import read_fused
from tests.helpers.classifying import FAST, assert_one_line_error, run
from tests.helpers.featurefiles import write_feature_file
from tests.helpers.layouts import write_split_file

COUNTS = [12, 12, 12]
SPLIT = (["train"] * 9 + ["test"] * 3) * 3


def test_files_of_one_split_fuse_and_keep_it(tmp_path: Path) -> None:
    a = write_split_file(tmp_path / "a.h5", SPLIT, COUNTS, dims=8, seed=1)
    b = write_split_file(tmp_path / "b.h5", SPLIT, COUNTS, dims=4, seed=2)
    fused = read_fused([a, b])
    assert fused.split == SPLIT and fused.X.shape == (36, 12)
    result = run(tmp_path / "outputs", "--features", str(a), "--features", str(b), *FAST)
    assert result.exit_code == 0, result.output
    assert "train 27, test 9 (given split from folders)" in result.output


def test_splits_that_disagree_are_refused_naming_the_first_image(tmp_path: Path) -> None:
    a = write_split_file(tmp_path / "a.h5", SPLIT, COUNTS)
    other = list(SPLIT)
    other[4] = "test"
    b = write_split_file(tmp_path / "b.h5", other, COUNTS)
    result = run(tmp_path / "outputs", "--features", str(a), "--features", str(b), *FAST)
    assert_one_line_error(result, f"{b}: class_00/0004.jpg is in the test split, in {a} the "
                                  "train split; fuse files extracted from the same images and "
                                  "the same split")


def test_a_file_with_a_split_and_one_without_are_refused(tmp_path: Path) -> None:
    a = write_split_file(tmp_path / "a.h5", SPLIT, COUNTS)
    b = write_feature_file(tmp_path / "b.h5", counts=COUNTS)
    result = run(tmp_path / "outputs", "--features", str(a), "--features", str(b), *FAST)
    assert_one_line_error(result, f"{b}: has no given split, while {a} has one; extract "
                                  "both from the same layout")
