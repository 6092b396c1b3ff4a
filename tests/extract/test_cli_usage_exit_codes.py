"""`extract`'s usage errors exit 2 and are decided before any scan or model is read
(new-user pass 2, item 4): a --dataset that names no dataset folder, a model file's
missing --preprocess, a --weights file that is not there."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from extract.cli import main
from tests.helpers.imagefolders import make_folder


def _extract(*args: str) -> Result:
    return CliRunner().invoke(main, [*args])


def _usage_error(result: Result, message: str) -> None:
    """Exit status 2, one error line carrying `message`, nothing after it."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.output.rstrip().splitlines()[-1] == f"Error: {message}", result.output


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """Two class folders of two images, and a garbage model file beside them (reading it
    would fail: a check that names another fault came first)."""
    (tmp_path / "garbage.onnx").write_bytes(b"not a model")
    return make_folder(tmp_path / "photos", classes=2, per_class=2)


def test_a_dataset_folder_not_found_is_refused_before_the_model_file_is_read(photos):
    missing = photos.parent / "nope"
    result = _extract("--dataset", str(missing), "--backbone",
                      str(photos.parent / "garbage.onnx"), "--preprocess", "imagenet")
    _usage_error(result, f"dataset folder not found: {missing} (named datasets: caltech101, "
                         "flowers17, animals)")


def test_a_dataset_path_that_is_a_file_exits_2(photos):
    image = photos / "class_0" / "img_000.jpg"
    result = _extract("--dataset", str(image), "--weights", "random")
    _usage_error(result, f"--dataset {image} is a file; give the folder that holds one "
                         f"sub-folder of images per class, such as {photos}")


def test_a_folder_of_loose_images_exits_2(photos):
    folder = photos / "class_0"
    result = _extract("--dataset", str(folder), "--weights", "random",
                      "--output", str(photos.parent / "f.h5"))
    _usage_error(result, f"2 images directly in {folder}; put them in one sub-folder per "
                         f"class (e.g. {folder / 'cat'}/, {folder / 'dog'}/)")
    assert not (photos.parent / "f.h5").exists()


def test_a_model_file_without_preprocess_exits_2_before_the_file_is_read(photos):
    result = _extract("--dataset", str(photos), "--backbone",
                      str(photos.parent / "garbage.onnx"))
    assert result.exit_code == 2, result.output
    assert "Error: --preprocess is required with a model file: choose imagenet, " in (
        result.output)


def test_a_weights_file_not_there_exits_2_before_the_scan(photos):
    """The folder of loose images would fail the scan: the --weights error comes first."""
    missing = photos.parent / "nofile.h5"
    result = _extract("--dataset", str(photos / "class_0"), "--weights", str(missing))
    _usage_error(result, f"--weights: {missing} is not 'imagenet', 'random' or an existing "
                         "weights file")


def test_a_model_file_not_there_exits_2(photos):
    missing = photos.parent / "missing.onnx"
    result = _extract("--dataset", str(photos), "--backbone", str(missing),
                      "--preprocess", "imagenet")
    _usage_error(result, f"Invalid value for '--backbone': {missing}: no such model file")
