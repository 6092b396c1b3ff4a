"""Findings 3 and 4 of the second new-user pass (classify): a missing --features file,
--repeats on a file with a given split and --split given on a file without one are
usage errors, exit 2, decided from the file's header before any draw or load, and the
explanation names where the file's labels came from."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.classifying import FAST, assert_one_line_error, run
from tests.helpers.featurefiles import write_feature_file
from tests.helpers.layouts import write_split_file

COUNTS = [12, 12, 12]
SPLIT = (["train"] * 9 + ["test"] * 3) * 3


def test_a_missing_features_file_is_a_usage_error(outputs: Path) -> None:
    result = run(outputs, "--features", str(outputs / "nothere.h5"), *FAST)
    assert result.exit_code == 2, result.output
    assert_one_line_error(result, f"Invalid value for '--features': {outputs / 'nothere.h5'}: "
                                  "no such feature file")


def test_repeats_on_a_given_split_is_refused_before_any_draw(tmp_path: Path) -> None:
    path = write_split_file(tmp_path / "f.h5", SPLIT, COUNTS)
    result = run(tmp_path / "outputs", "--features", str(path), *FAST, "--repeats", "3")
    assert result.exit_code == 2, result.output
    assert "draw 1 of 3" not in result.output
    assert_one_line_error(result, f"--repeats 3: {path} has a given split, which is one draw")


def test_split_given_on_a_label_file_without_a_split_column_names_the_label_file(
        tmp_path: Path) -> None:
    path = write_feature_file(tmp_path / "f.h5", counts=COUNTS,
                              attrs={"labels_file": "/data/labels.csv",
                                     "labels_columns": "image,class"})
    result = run(tmp_path / "outputs", "--features", str(path), *FAST, "--split", "given")
    assert result.exit_code == 2, result.output
    assert_one_line_error(result, f"--split given: {path} has no given split (its label file "
                                  "labels.csv has no split column)")
    assert "class folders" not in result.output


def test_split_given_on_class_folders_still_says_so(tmp_path: Path) -> None:
    path = write_feature_file(tmp_path / "f.h5", counts=COUNTS)
    result = run(tmp_path / "outputs", "--features", str(path), *FAST, "--split", "given")
    assert result.exit_code == 2, result.output
    assert_one_line_error(result, f"--split given: {path} has no given split (its images came "
                                  "from class folders)")
