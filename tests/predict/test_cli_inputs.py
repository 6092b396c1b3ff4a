"""predict checks what it is given before the model loads, warns about images it cannot
read as extract does, and says when the images are the model's own training images."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import predict.cli
from tests.helpers.bundles import run_predict

SUPPORTED = ".bmp, .gif, .jpeg, .jpg, .png, .tif, .tiff, .webp"


def test_a_file_in_a_format_not_read_is_refused_before_the_model_loads(
        trained: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, model, _ = trained
    table = tmp_path / "labels.csv"
    table.write_text("path,label\n")

    def no_model(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was loaded before the inputs were checked")

    monkeypatch.setattr(predict.cli, "load_bundle", no_model)
    result = run_predict("--model", model, table)
    assert result.exit_code == 1
    assert result.output == (f"Error: {table}: not in an image format predict reads; "
                             f"supported: {SUPPORTED}\n")


def test_images_in_a_folder_in_formats_not_read_are_named_as_extract_names_them(
        trained: tuple[Path, Path, Path], tmp_path: Path) -> None:
    root, model, _ = trained
    folder = tmp_path / "phone"
    folder.mkdir()
    shutil.copy(root / "class_0" / "img_000.png", folder)
    (folder / "IMG_0001.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")
    result = run_predict("--model", model, folder)
    assert result.exit_code == 0, result.output
    assert (f"warning: 1 image file(s) in {folder} are in formats not read (.heic: 1) and "
            f"were ignored; supported: {SUPPORTED}\n") in result.output
    assert "1 image labelled, 0 skipped; " in result.output


def test_the_model_s_own_training_images_are_named_as_such(
        trained: tuple[Path, Path, Path], tmp_path: Path) -> None:
    root, model, _ = trained
    result = run_predict("--model", model, root)
    assert result.exit_code == 0, result.output
    note = (f"note: {root} holds the images this model was made from (the same files, sizes "
            "and dates as its training features): most of them trained it, so the report "
            "below overstates how it does on new images; its accuracy on its held-out test "
            "images was ")
    assert note in result.output
    assert result.output.index(note) < result.output.index("against the class folders")
    # The same pictures saved anew are new files to the model: no note.
    fresh = tmp_path / "fresh"
    shutil.copytree(root, fresh, copy_function=shutil.copyfile)
    result = run_predict("--model", model, fresh)
    assert result.exit_code == 0, result.output
    assert "against the class folders (24 images)" in result.output
    assert "made from" not in result.output
