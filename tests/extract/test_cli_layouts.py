"""`extract` on real flowers17 photos in each layout users have: a train/ + test/ tree,
and a flat folder with a label file; and the one-line refusals of bad input."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from classify.cli import main as classify
from extract import cache
from extract.cli import main as extract
from extract.featurefile import Extractor, Role, read_features
from tests.helpers.classifying import assert_one_line_error, only
from tests.helpers.extracting import extract_small
from tests.helpers.layouts import (
    class_folders,
    flat_with_labels,
    flowers,
    split_folders,
    write_rows,
)

PARTS = {"train": 6, "test": 3}


@pytest.fixture(scope="module")
def split_tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """ds/train/<class>/ and ds/test/<class>/ of 3 flowers17 classes, extracted."""
    tmp = tmp_path_factory.mktemp("split")
    root = split_folders(tmp / "ds", flowers(3, 9), PARTS)
    result = extract_small(root, tmp / "ds.h5")
    assert result.exit_code == 0, result.output
    assert f"{root.resolve()}: 27 images in 3 classes; given split: train 18, test 9" in (
        result.output)
    return root, tmp / "ds.h5"


def test_a_train_test_tree_gives_a_file_with_the_folders_split(
        split_tree: tuple[Path, Path]) -> None:
    root, file = split_tree
    features = read_features(file)
    assert features.label_names == sorted(os.listdir(root / "train"))
    assert features.split is not None
    for split in ("train", "test"):
        on_disk = sorted(p.relative_to(root).as_posix() for p in (root / split).rglob("*.jpg"))
        rows = sorted(p for p, s in zip(features.paths, features.split) if s == split)
        assert rows == on_disk
    assert features.attrs["split_source"] == "folders"
    with h5py.File(file) as f:  # a plain per-row text dataset beside the others
        assert f["split"].shape == (27,)


def test_classify_tests_on_the_test_folder(split_tree: tuple[Path, Path], tmp_path: Path
                                           ) -> None:
    root, file = split_tree
    outputs = tmp_path / "outputs"
    result = CliRunner().invoke(classify, ["--features", str(file), "--outputs", str(outputs),
                                           "--jobs", "1", "--grid", "C=0.1,1"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(only(outputs / "reports", "*/metrics.json").read_text())
    assert metrics["n_test"] == len(list((root / "test").rglob("*.jpg"))) == 9
    assert metrics["n_train"] == 18
    assert {Path(p["path"]).parts[0] for p in metrics["test_predictions"]} == {"test"}
    assert metrics["protocol"]["kind"] == "given"
    assert "train 18, test 9 (given split from folders)" in result.output
    history = CliRunner().invoke(classify, ["--history", "--outputs", str(outputs)])
    assert "(given split: folders)" in history.output
    random = CliRunner().invoke(classify, ["--features", str(file), "--outputs", str(outputs),
                                           "--jobs", "1", "--split", "random"])
    assert "train 20, test 7 (stratified, test size 0.25, seed 42)" in random.output


def test_a_label_csv_over_a_flat_folder_gives_the_class_folders_rows(tmp_path: Path) -> None:
    photos = flowers(3, 5)
    folders = class_folders(tmp_path / "classes", photos)
    flat = flat_with_labels(tmp_path / "images", photos, tmp_path / "labels.csv")
    assert extract_small(folders, tmp_path / "classes.h5").exit_code == 0
    result = extract_small(flat, tmp_path / "flat.h5", "--labels", str(tmp_path / "labels.csv"))
    assert result.exit_code == 0, result.output
    assert "15 images in 3 classes, labels from labels.csv" in result.output
    by_folder, by_file = read_features(tmp_path / "classes.h5"), read_features(tmp_path / "flat.h5")
    assert by_file.label_names == by_folder.label_names
    assert by_file.split is None
    order_a = np.argsort([Path(p).name for p in by_folder.paths])
    order_b = np.argsort(by_file.paths)
    assert [Path(by_folder.paths[i]).name for i in order_a] == [by_file.paths[i] for i in order_b]
    assert np.array_equal(by_folder.y[order_a], by_file.y[order_b])
    np.testing.assert_allclose(by_folder.X[order_a], by_file.X[order_b], rtol=1e-5, atol=1e-5)
    assert by_file.attrs["labels_sha256"] and by_file.attrs["labels_columns"] == "path,label"


def test_an_edited_label_list_makes_a_new_file_and_the_list_shows_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    photos = flowers(2, 3)
    flat = flat_with_labels(tmp_path / "images", photos, tmp_path / "labels.csv",
                            header=("file", "class", "split"), splits=["train", "train", "test"])
    monkeypatch.chdir(tmp_path)  # the default outputs/ folder
    command = ["--dataset", str(flat), "--labels", str(tmp_path / "labels.csv"), "--backbone",
               "vgg16", "--weights", "random", "--image-size", "32"]
    first = CliRunner().invoke(extract, command)
    assert first.exit_code == 0, first.output
    assert "given split: train 4, test 2" in first.output
    table = (tmp_path / "labels.csv").read_text()
    (tmp_path / "labels.csv").write_text(table.replace("image_0003.jpg,daffodil,test",
                                                       "image_0003.jpg,daffodil,train"))
    second = CliRunner().invoke(extract, command)
    assert second.exit_code == 0, second.output
    assert "given split: train 5, test 1" in second.output
    files = sorted((tmp_path / "outputs" / "features").glob("*.h5"))
    assert len(files) == 2  # the first file is kept: another label list, another identity
    listed = CliRunner().invoke(extract, ["--list"])
    assert listed.output.count("labels and given split from labels.csv") == 2
    assert len({cache.digest(cache.identity_of(read_features(f).attrs)) for f in files}) == 2


@pytest.mark.parametrize(("layout", "message"), [
    ("no columns", "labels.csv: no path or label column among its columns (name, kind)"),
    ("other split", "labels.csv line 3: split 'holdout' is not one of train"),
    ("label without images", "labels.csv: label 'tulip' has no images"),
    ("empty split", ("the val split folder holds no images; put one sub-folder of images per "
                    "class in it, or remove it")),
    ("mixed", "holds split folders (test/, train/) and class folders (tulip/) side by side"),
])
def test_bad_input_is_one_line_and_nothing_written_is_lost(
        tmp_path: Path, layout: str, message: str) -> None:
    photos = flowers(2, 4)
    out = tmp_path / "kept.h5"
    out.write_bytes(b"an earlier file")
    labels = tmp_path / "labels.csv"
    if layout in ("empty split", "mixed"):
        root = split_folders(tmp_path / "ds", photos, {"train": 2, "test": 2})
        if layout == "empty split":
            (root / "val").mkdir()
        else:
            class_folders(root, {"tulip": photos["daffodil"]})
        result = extract_small(root, out)
    else:
        root = flat_with_labels(tmp_path / "images", photos, labels)
        rows = {"no columns": [["name", "kind"], ["image_0001.jpg", "daffodil"]],
                "other split": [["path", "label", "split"], ["image_0001.jpg", "daffodil", "train"],
                                ["image_0081.jpg", "snowdrop", "holdout"]],
                "label without images": [["path", "label"], ["image_0001.jpg", "daffodil"],
                                         ["image_0081.jpg", "snowdrop"], ["x.jpg", "tulip"]]}
        write_rows(labels, rows[layout])
        result = extract_small(root, out, "--labels", str(labels))
    assert_one_line_error(result, message)
    assert out.read_bytes() == b"an earlier file"


def test_labels_columns_need_a_label_file_and_name_real_columns(tmp_path: Path) -> None:
    photos = flowers(2, 2)
    root = flat_with_labels(tmp_path / "images", photos, tmp_path / "labels.csv")
    alone = extract_small(root, tmp_path / "x.h5", "--labels-columns", "path,label")
    assert_one_line_error(alone, "--labels-columns names the columns of a --labels file")
    wrong = extract_small(root, tmp_path / "x.h5", "--labels", str(tmp_path / "labels.csv"),
                          "--labels-columns", "file,label")
    assert_one_line_error(wrong, "labels.csv: no column 'file' (its columns: path, label); "
                                 "check --labels-columns")
    shape = extract_small(root, tmp_path / "x.h5", "--labels", str(tmp_path / "labels.csv"),
                          "--labels-columns", "path")
    assert_one_line_error(shape, "give PATH,LABEL or PATH,LABEL,SPLIT")


def test_a_file_read_before_split_folders_were_known_is_relabelled_not_reused(
        split_tree: tuple[Path, Path], tmp_path: Path) -> None:
    root, file = split_tree
    old = tmp_path / "old.h5"
    shutil.copy(file, old)
    with h5py.File(old, "r+") as f:  # what an earlier offtheshelf wrote: no split
        del f["split"]
        del f.attrs["split_source"]
    result = extract_small(root, old)
    assert result.exit_code == 0, result.output
    assert "written before its split folders were read as a split; 27 rows are reused, 0 " \
           "images go through the model" in result.output
    assert read_features(old).split == read_features(file).split


def test_files_of_image_folders_keep_their_identity_and_name() -> None:
    extractor = Extractor(backbone="vgg16", weights="imagenet", pooling="avg", input_size=224)
    plain = cache.identity("/data/photos", extractor)
    assert set(plain) == {"dataset_root", *Extractor.names(Role.IDENTITY)}
    assert cache.digest(plain) == cache.digest(cache.identity("/data/photos", extractor, None))
    labelled = cache.identity("/data/photos", extractor,
                              {"labels_sha256": "ab" * 32, "labels_columns": "path,label"})
    assert cache.digest(labelled) != cache.digest(plain)
    assert cache.differences(labelled, plain) == [
        f"labels_sha256 {'ab' * 32} vs None", "labels_columns path,label vs None"]
