"""The protocols users' data and papers call for: the split given with the images
(val as the one validation fold), N training images per class, and draws averaged;
and their one-line refusals."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from classify import protocol
from extract.featurefile import read_features, read_header
from tests.helpers.classifying import FAST, assert_one_line_error, only, run
from tests.helpers.featurefiles import write_feature_file
from tests.helpers.layouts import write_split_file

COUNTS = [12, 12, 12]
# Per class, in row order: 8 train, 2 val, 2 test.
WITH_VAL = (["train"] * 8 + ["val"] * 2 + ["test"] * 2) * 3
NO_VAL = (["train"] * 9 + ["test"] * 3) * 3


def metrics_of(outputs: Path) -> dict:
    return json.loads(only(outputs / "reports", "*/metrics.json").read_text())


def test_a_given_val_part_is_the_one_validation_fold_and_test_is_scored_once(
        tmp_path: Path) -> None:
    path = write_split_file(tmp_path / "f.h5", WITH_VAL, COUNTS)
    chosen = protocol.choose_rows(read_header(path), 0.25, 42, protocol.Protocol(), print)
    split = np.asarray(WITH_VAL)
    assert np.array_equal(chosen.test_rows, np.flatnonzero(split == "test"))
    assert np.array_equal(chosen.train_rows, np.flatnonzero(split != "test"))  # refit: train+val
    n_splits, folds = protocol.search_folds(chosen, 3, 42, print)
    ((train, val),) = list(folds.split(np.zeros((len(chosen.y_train), 1)), chosen.y_train))
    assert n_splits == 1
    assert np.array_equal(chosen.train_rows[val], np.flatnonzero(split == "val"))
    assert np.array_equal(chosen.train_rows[train], np.flatnonzero(split == "train"))
    outputs = tmp_path / "outputs"
    result = run(outputs, "--features", str(path), *FAST)
    assert result.exit_code == 0, result.output
    assert "train 30 (val 6 of them), test 6 (given split from folders)" in result.output
    assert "validated on the given val part" in result.output
    metrics = metrics_of(outputs)
    assert (metrics["n_train"], metrics["n_test"], metrics["cv_used"]) == (30, 6, 1)
    assert metrics["protocol"]["n_val"] == 6


def test_without_val_the_search_folds_the_train_part(tmp_path: Path) -> None:
    path = write_split_file(tmp_path / "f.h5", NO_VAL, COUNTS, source="/data/labels.csv")
    outputs = tmp_path / "outputs"
    result = run(outputs, "--features", str(path), *FAST)
    assert result.exit_code == 0, result.output
    assert "using the given split (labels.csv): train 27, test 9" in result.output
    assert "3-fold stratified cv on the training part" in result.output
    assert (metrics_of(outputs)["n_test"], metrics_of(outputs)["cv_used"]) == (9, 3)


def test_the_per_class_protocol_trains_on_exactly_n_per_class(tmp_path: Path) -> None:
    header = read_header(write_split_file(tmp_path / "f.h5", ["train"] * 65, [20, 15, 30]))
    chosen = protocol.choose_rows(header, 0.25, 42, protocol.Protocol(
        split="random", train_per_class=5, test_per_class=4), print)
    assert np.bincount(chosen.y_train).tolist() == [5, 5, 5]
    assert np.bincount(chosen.y_test).tolist() == [4, 4, 4]
    assert not set(chosen.train_rows) & set(chosen.test_rows)
    again = protocol.choose_rows(header, 0.25, 42, protocol.Protocol(
        split="random", train_per_class=5, test_per_class=4), print)
    other = protocol.choose_rows(header, 0.25, 43, protocol.Protocol(
        split="random", train_per_class=5, test_per_class=4), print)
    assert np.array_equal(again.train_rows, chosen.train_rows)
    assert not np.array_equal(other.train_rows, chosen.train_rows)
    rest = protocol.choose_rows(header, 0.25, 42, protocol.Protocol(
        split="random", train_per_class=5), print)
    assert np.bincount(rest.y_test).tolist() == [15, 10, 25]  # all the others


def test_the_per_class_protocol_draws_from_the_given_split(tmp_path: Path) -> None:
    header = read_header(write_split_file(tmp_path / "f.h5", NO_VAL, COUNTS))
    chosen = protocol.choose_rows(header, 0.25, 42, protocol.Protocol(train_per_class=4),
                                  print)
    split = np.asarray(NO_VAL)
    assert set(split[chosen.train_rows]) == {"train"} and set(split[chosen.test_rows]) == {"test"}
    assert np.bincount(chosen.y_train).tolist() == [4, 4, 4]


def test_repeats_average_draws_of_the_per_class_protocol(tmp_path: Path) -> None:
    path = write_feature_file(tmp_path / "f.h5", counts=[20, 20, 20], spread=1.0)
    outputs = tmp_path / "outputs"
    result = run(outputs, "--features", str(path), "--jobs", "1",
                 "--train-per-class", "6", "--test-per-class", "5", "--repeats", "3")
    assert result.exit_code == 0, result.output
    metrics = metrics_of(outputs)
    assert (metrics["n_train"], metrics["n_test"]) == (18, 15)
    assert [draw["seed"] for draw in metrics["draws"]] == [42, 43, 44]
    scores = [draw["balanced_accuracy"] for draw in metrics["draws"]]
    assert metrics["balanced_accuracy"] == scores[0]
    assert metrics["balanced_accuracy_mean"] == pytest.approx(np.mean(scores))
    assert metrics["balanced_accuracy_std"] == pytest.approx(np.std(scores))
    assert f"balanced    {scores[0]:.4f} (mean per-class recall)" in result.output
    assert (f"draws       3 draws (seeds 42..44): balanced accuracy {np.mean(scores):.4f} ± "
            f"{np.std(scores):.4f}") in result.output
    with (outputs / "results.csv").open(newline="") as handle:
        (row,) = csv.DictReader(handle)
    assert row["protocol"] == (f"6 per class, test up to 5; 3 draws: balanced accuracy "
                               f"{np.mean(scores):.4f} ± {np.std(scores):.4f}")
    assert "(6 per class" in run(outputs, "--history").output


@pytest.mark.parametrize(("split", "args", "message"), [
    (None, ["--split", "given"],
     "--split given: {path} has no given split (its images came from class folders)"),
    (["train"] * 36, [],
     ("{path}: its given split (folders) has no test images (train 36, test 0); pass "
     "--split random to split the images here")),
    (NO_VAL, ["--repeats", "2"],
     ("--repeats 2: {path} has a given split, which is one draw; pass --split random or "
     "--train-per-class N to average draws")),
    (None, ["--test-per-class", "3"], "--test-per-class goes with --train-per-class N"),
    (None, ["--train-per-class", "12"],
     ("--train-per-class 12: fewer than 2 classes of {path} have 12 training images and a "
     "test image; lower it")),
])
def test_protocols_the_data_cannot_support_are_one_line(
        tmp_path: Path, split: list[str] | None, args: list[str], message: str) -> None:
    path = tmp_path / "f.h5"
    if split is None:
        write_feature_file(path, counts=COUNTS)
    else:
        write_split_file(path, split, COUNTS)
    result = run(tmp_path / "outputs", "--features", str(path), *FAST, *args)
    assert_one_line_error(result, message.format(path=path))
    assert not (tmp_path / "outputs" / "results.csv").exists()
    assert read_features(path).X.shape == (36, 16)  # the file is as it was
