"""Findings 4, 5 and 13c of the second new-user pass (finding the feature file): a
misspelt --dataset gets a did-you-mean and exit 2; files that differ only in their
labels are listed with what differs and the advice is --features; the hint after a
misspelt backbone does not repeat the typo."""

from __future__ import annotations

from pathlib import Path

import pytest

from classify.locate import LocateError, by_dataset
from tests.helpers.classifying import FAST, assert_one_line_error, run
from tests.helpers.featurefiles import write_feature_file

FLAT = {"dataset": "flat", "dataset_root": "/data/flat", "backbone": "efficientnet_lite0"}


def test_a_misspelt_dataset_gets_a_did_you_mean_and_exit_2(outputs: Path) -> None:
    write_feature_file(outputs / "features" / "flowers5-efficientnet_lite0-avg-1.h5",
                       attrs={**FLAT, "dataset": "flowers5", "dataset_root": "/d/flowers5"})
    result = run(outputs, "--dataset", "flowrs5", "--backbone", "efficientnet_lite0", *FAST)
    assert result.exit_code == 2, result.output
    assert_one_line_error(result, f"Invalid value for '--dataset': no feature file in "
                                  f"{outputs / 'features'} has dataset 'flowrs5'; did you mean "
                                  "flowers5? the files have flowers5 (extract --list")


def test_a_legacy_file_gives_its_dataset_name_from_its_file_name(
        feature_file: Path, outputs: Path) -> None:
    result = run(outputs, "--dataset", "tyo", "--backbone", "vgg16", *FAST)
    assert result.exit_code == 2, result.output
    assert "did you mean toy? the files have toy" in result.output


def test_files_that_differ_only_in_their_labels_are_told_apart(outputs: Path) -> None:
    folder = outputs / "features"
    a = write_feature_file(folder / "flat-efficientnet_lite0-avg-aaaa.h5",
                           attrs={**FLAT, "labels_file": "/data/labels.csv"})
    b = write_feature_file(folder / "flat-efficientnet_lite0-avg-bbbb.h5",
                           attrs={**FLAT, "labels_file": "/data/labels_split.csv",
                                  "split_source": "/data/labels_split.csv"})
    c = write_feature_file(folder / "mine.h5", attrs=FLAT)
    with pytest.raises(LocateError) as caught:
        by_dataset(folder, "flat", "efficientnet_lite0")
    message = str(caught.value)
    lines = message.splitlines()
    listed = {line.split(":")[0].strip(): line for line in lines[1:4]}
    assert sorted(listed) == sorted(path.name for path in (a, b, c))
    assert listed[a.name].endswith(", labels from labels.csv")
    assert listed[b.name].endswith(", labels and given split from labels_split.csv")
    assert lines[-1].startswith("--pooling and --image-size cannot tell them apart; name one "
                                "with --features FILE, e.g. --features "), lines[-1]
    assert "narrow down" not in message


def test_files_in_different_folders_of_one_name_show_their_folders(outputs: Path) -> None:
    folder = outputs / "features"
    write_feature_file(folder / "a.h5", attrs=FLAT)
    write_feature_file(folder / "b.h5", attrs={**FLAT, "dataset_root": "/elsewhere/flat"})
    result = run(outputs, "--dataset", "flat", "--backbone", "efficientnet_lite0", *FAST)
    assert "images in /elsewhere/flat" in result.output
    assert "images in /data/flat" in result.output


def test_the_backbone_hint_does_not_repeat_the_typo(feature_file: Path, outputs: Path) -> None:
    result = run(outputs, "--dataset", "toy", "--backbone", "vgg61", *FAST)
    assert result.exit_code == 2, result.output
    assert_one_line_error(result, "did you mean vgg16? the files have vgg16 (extract --list "
                                  "shows them; extract --backbone NAME makes one)")
    assert "--backbone vgg61 makes" not in result.output


def test_inspect_s_lookup_suggests_the_dataset_too(outputs: Path) -> None:
    """inspect finds its file with by_dataset alone: its refusal carries the did-you-mean."""
    folder = outputs / "features"
    write_feature_file(folder / "flowers5-efficientnet_lite0-avg-1.h5",
                       attrs={**FLAT, "dataset": "flowers5", "dataset_root": "/d/flowers5"})
    with pytest.raises(LocateError) as caught:
        by_dataset(folder, "flowrs5", "efficientnet_lite0")
    message = str(caught.value)
    assert "did you mean flowers5? run extract first" in message, message
