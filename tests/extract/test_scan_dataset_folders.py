"""A folder that holds dataset folders is not a dataset whose classes are those folders:
`extract` refuses it as it refuses a folder above one dataset (new-user pass 2, item 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from extract.cli import main
from extract.scan import NotADatasetError, scan
from tests.helpers.imagefolders import class_image, make_folder


def _above(tmp_path: Path) -> Path:
    """above/flowers/ (3 class folders) and above/dirty/ (2 class folders)."""
    make_folder(tmp_path / "above" / "flowers", classes=3, per_class=2)
    make_folder(tmp_path / "above" / "dirty", classes=2, per_class=2)
    return tmp_path / "above"


def test_a_folder_of_two_dataset_folders_is_refused_naming_them(tmp_path):
    above = _above(tmp_path)
    with pytest.raises(NotADatasetError) as error:
        scan(above)
    assert str(error.value) == (
        f"{above}: found 2 class folders, dirty/ and flowers/, which each hold sub-folders of "
        f"images, as dataset folders do; point --dataset at one of them, such as "
        f"{above / 'dirty'}")


def test_extract_refuses_it_as_a_usage_error_before_any_work(tmp_path):
    above = _above(tmp_path)
    result = CliRunner().invoke(main, ["--dataset", str(above), "--weights", "random",
                                       "--output", str(tmp_path / "f.h5")])
    assert result.exit_code == 2, result.output
    assert "which each hold sub-folders of images, as dataset folders do" in result.output
    assert not (tmp_path / "f.h5").exists()


def test_class_folders_with_images_in_sub_folders_stay_classes(tmp_path):
    """Images anywhere below a class folder are its own: one class whose images lie
    directly in it, or in a single sub-folder, keeps the folder a dataset."""
    root = make_folder(tmp_path / "photos", classes=2, per_class=2)
    for label, name in enumerate(("2019", "2020")):
        (root / "class_0" / name).mkdir()
        class_image(0, 10 + label).save(root / "class_0" / name / "more.jpg")
    (root / "class_1" / "2019").mkdir()
    for image in list((root / "class_1").glob("*.jpg")):
        image.rename(root / "class_1" / "2019" / image.name)
    assert scan(root).label_names == ["class_0", "class_1"]
