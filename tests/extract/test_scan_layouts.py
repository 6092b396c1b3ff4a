"""Reading users' data as it comes: split folders of class folders, and a flat folder
with a label file (CSV or TSV), on real flowers17 photos."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from extract.labels import LabelFileError, scan_labelled
from extract.plan import plan
from extract.scan import ScanError, scan
from tests.helpers.layouts import (
    class_folders,
    flat_with_labels,
    flowers,
    link,
    split_folders,
    write_rows,
)


def test_split_folders_give_one_dataset_with_its_split(tmp_path: Path) -> None:
    photos = flowers(3, 5)
    root = split_folders(tmp_path / "ds", photos, {"Training": 3, "valid": 1, "TEST": 1})
    found = scan(root)
    assert found.label_names == sorted(photos)
    assert found.split_counts() == {"train": 9, "val": 3, "test": 3}
    assert found.split_source == "folders"
    by_path = dict(zip(found.paths, found.split))
    assert by_path["Training/daffodil/image_0001.jpg"] == "train"
    assert by_path["valid/daffodil/image_0004.jpg"] == "val"
    assert by_path["TEST/daffodil/image_0005.jpg"] == "test"
    # The plan keeps each row's split beside it in the seeded row order.
    rows = plan(found)
    assert dict(zip(rows.paths, rows.split)) == by_path


def test_a_class_missing_from_a_split_is_kept_with_a_warning_naming_it(tmp_path: Path) -> None:
    photos = flowers(3, 4)
    root = split_folders(tmp_path / "ds", photos, {"train": 3, "test": 1})
    for image in (root / "test" / "snowdrop").iterdir():
        image.unlink()
    with pytest.warns(UserWarning, match="the test split has no images of 1 class.*: snowdrop"):
        found = scan(root)
    assert found.label_names == sorted(photos)
    assert found.split_counts() == {"train": 9, "test": 2}


def test_split_folders_beside_class_folders_are_refused_naming_both(tmp_path: Path) -> None:
    photos = flowers(2, 4)
    root = split_folders(tmp_path / "ds", photos, {"train": 2, "test": 2})
    class_folders(root, {"tulip": photos["daffodil"]})
    with pytest.raises(ScanError, match=r"holds split folders \(test/, train/\) and class "
                                        r"folders \(tulip/\) side by side"):
        scan(root)


def test_an_empty_split_folder_is_refused_naming_it(tmp_path: Path) -> None:
    root = split_folders(tmp_path / "ds", flowers(2, 4), {"train": 2, "test": 2})
    (root / "val" / "daffodil").mkdir(parents=True)
    with pytest.raises(ScanError, match=f"{root / 'val'}: the val split folder holds no images"):
        scan(root)


def test_label_file_over_a_flat_folder_gives_the_class_folders_labels(tmp_path: Path) -> None:
    photos = flowers(3, 4)
    folders = scan(class_folders(tmp_path / "classes", photos))
    root = flat_with_labels(tmp_path / "images", photos, tmp_path / "labels.csv")
    found = scan_labelled(root, tmp_path / "labels.csv")
    assert found.label_names == folders.label_names
    assert sorted(zip(found.paths, found.labels)) == sorted(
        (Path(p).name, label) for p, label in zip(folders.paths, folders.labels))
    assert found.split is None and found.split_source is None
    assert found.label_file is not None
    assert found.label_file.sha256 == hashlib.sha256(
        (tmp_path / "labels.csv").read_bytes()).hexdigest()


def test_a_tsv_with_ids_other_column_names_and_a_split_column(tmp_path: Path) -> None:
    photos = flowers(2, 4)
    root = flat_with_labels(tmp_path / "images", photos, tmp_path / "labels.tsv",
                            header=("Image ID", "Category", "split"), delimiter="\t",
                            splits=["train", "train", "Validation", "test"])
    table = (tmp_path / "labels.tsv").read_text().replace(".jpg", "")  # ids, no extension
    (tmp_path / "labels.tsv").write_text(table)
    with pytest.raises(LabelFileError, match="no path column"):  # "image id" is not a name
        scan_labelled(root, tmp_path / "labels.tsv")
    found = scan_labelled(root, tmp_path / "labels.tsv", ("Image ID", "Category", "split"))
    assert found.split_counts() == {"train": 4, "val": 2, "test": 2}
    assert "image_0001.jpg" in found.paths
    assert found.label_file is not None
    assert found.label_file.columns == "Image ID,Category,split"


def test_rows_naming_missing_files_are_listed_and_skipped(tmp_path: Path) -> None:
    photos = flowers(2, 3)
    root = flat_with_labels(tmp_path / "images", photos, tmp_path / "labels.csv")
    with (tmp_path / "labels.csv").open("a") as handle:
        handle.write("gone.jpg,daffodil\nimage_9999,snowdrop\n")
    with pytest.warns(UserWarning, match=r"2 row\(s\) name files not in .*, skipped: line 8 "
                                         r"\(gone.jpg\), line 9 \(image_9999\)"):
        found = scan_labelled(root, tmp_path / "labels.csv")
    assert len(found) == 6


@pytest.mark.parametrize(("rows", "message"), [
    ([["name", "kind"], ["image_0001.jpg", "daffodil"]],
     ("labels.csv: no path or label column among its columns (name, kind); name the path "
     "column path|file|filename|image|id and the label column label|class|category, or give "
     "--labels-columns PATH,LABEL[,SPLIT]")),
    ([["path", "label", "split"], ["image_0001.jpg", "daffodil", "train"],
      ["image_0081.jpg", "snowdrop", "holdout"]],
     ("labels.csv line 3: split 'holdout' is not one of train, training, val, valid, "
     "validation, test, testing; correct it, or leave the column out with --labels-columns "
     "path,label")),
    ([["path", "label"], ["image_0001.jpg", "daffodil"], ["image_0081.jpg", "snowdrop"],
      ["image_0001.jpg", "snowdrop"]],
     ("labels.csv line 4: image_0001.jpg is listed again with label 'snowdrop' (line 2: "
     "'daffodil'); keep one of its rows")),
    ([["path", "label"], ["image_0001.jpg", "daffodil"], ["image_0081.jpg", "snowdrop"],
      ["lost.jpg", "tulip"]],
     "labels.csv: label 'tulip' has no images: its 1 row(s) name files not in"),
    ([["path", "label", "split"], ["image_0001.jpg", "daffodil", "train"],
      ["image_0081.jpg", "snowdrop", "train"], ["lost.jpg", "snowdrop", "test"]],
     "labels.csv: split 'test' has no images: its 1 row(s) name files not in"),
])
def test_bad_label_files_are_refused_in_one_line_naming_file_and_row(
        tmp_path: Path, rows: list[list[str]], message: str) -> None:
    photos = flowers(2, 1)
    root = tmp_path / "images"
    for files in photos.values():
        link(files[0], root / files[0].name)
    write_rows(tmp_path / "labels.csv", rows)
    with pytest.raises(LabelFileError) as caught:
        scan_labelled(root, tmp_path / "labels.csv")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
