"""Issue 26, item 14 (extract): a misspelt backbone is a usage error like a misspelt model,
and a dataset path that is a file is called a file, not "not found"."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from extract.cli import main
from tests.helpers.imagefolders import make_folder


def test_a_misspelt_backbone_exits_2_like_a_misspelt_model(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "data", classes=2, per_class=1)
    result = CliRunner().invoke(main, ["--dataset", str(root), "--backbone", "vgg61",
                                       "--output", str(tmp_path / "f.h5")])
    assert result.exit_code == 2, result.output
    assert ("Error: Invalid value for '--backbone': unknown backbone 'vgg61'; did you mean "
            "vgg19 or vgg16?") in result.output
    assert not (tmp_path / "f.h5").exists()


def test_a_dataset_path_that_is_a_file_is_called_a_file(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "photos", classes=2, per_class=2)
    image = next((root / "class_0").iterdir())
    result = CliRunner().invoke(main, ["--dataset", str(image), "--weights", "random",
                                       "--output", str(tmp_path / "f.h5")])
    assert result.exit_code == 2, result.output  # a usage error
    assert (f"Error: --dataset {image} is a file; give the folder that holds one sub-folder "
            f"of images per class, such as {root}") in result.output
    assert "not found" not in result.output
