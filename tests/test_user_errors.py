"""What a new user meets: layout errors that say what was found, ignored formats, TIFF,
name suggestions, listings and help examples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from classify.cli import main as classify_main
from classify.models import ModelError, get_model
from extract.backbones import registry
from extract.cli import main as extract_main
from extract.featurefile import read_features
from extract.scan import ScanError, scan
from predict.cli import main as predict_main
from tests.helpers.imagefolders import class_image, make_folder


def _invoke(command, *args: str | Path):
    return CliRunner().invoke(command, [str(a) for a in args])


def test_flat_folder_says_how_many_images_and_what_to_do(tmp_path: Path) -> None:
    for index in range(60):
        class_image(index % 2, index).save(tmp_path / f"img_{index:02d}.jpg")
    with pytest.raises(ScanError) as error:
        scan(tmp_path)
    assert str(error.value).startswith(
        f"60 images directly in {tmp_path}; put them in one sub-folder per class")


def test_folder_one_level_too_high_names_the_folder_to_point_at(tmp_path: Path) -> None:
    make_folder(tmp_path / "flowers", classes=3, per_class=2)
    with pytest.raises(ScanError) as error:
        scan(tmp_path)
    message = str(error.value)
    assert "found 1 class folder, flowers/, which holds 3 sub-folders of images" in message
    assert f"point --dataset at {tmp_path / 'flowers'}" in message


def test_ignored_image_formats_are_counted_and_the_supported_ones_named(tmp_path: Path) -> None:
    make_folder(tmp_path, classes=2, per_class=3)
    for name in ("a.heic", "b.HEIC", "c.svg"):
        (tmp_path / "class_0" / name).write_bytes(b"whatever")
    (tmp_path / "class_1" / "notes.txt").write_text("not an image, not counted")
    with pytest.warns(UserWarning) as caught:
        found = scan(tmp_path)
    assert len(found) == 6
    (message,) = [str(w.message) for w in caught]
    assert message.startswith(f"3 image file(s) in {tmp_path} are in formats not read "
                              "(.heic: 2, .svg: 1) and were ignored; supported: .bmp, .gif")
    assert ".tif, .tiff" in message


def test_tiff_is_read_like_the_same_pixels_as_png_and_predict_names_unsupported_files(
    tmp_path: Path,
) -> None:
    outputs = tmp_path / "outputs"
    features = {}
    for ext in ("tif", "png"):
        root = make_folder(tmp_path / ext, classes=2, per_class=4, ext=ext)
        out = outputs / "features" / f"{ext}-vgg16-avg.h5"
        result = _invoke(extract_main, "--dataset", root, "--backbone", "vgg16", "--pooling",
                         "avg", "--weights", "random", "--image-size", "32", "--output", out)
        assert result.exit_code == 0, result.output
        assert f"{root}: 8 images in 2 classes" in result.output
        features[ext] = read_features(out)
    rows = {ext: {Path(p).with_suffix("").as_posix(): row for p, row in zip(f.paths, f.X)}
            for ext, f in features.items()}
    assert rows["tif"].keys() == rows["png"].keys()
    for image, row in rows["tif"].items():
        np.testing.assert_allclose(row, rows["png"][image], rtol=1e-5, atol=1e-5)

    result = _invoke(classify_main, "--features", outputs / "features" / "tif-vgg16-avg.h5",
                     "--model", "knn", "--outputs", outputs, "--jobs", "1")
    assert result.exit_code == 0, result.output
    (model,) = (outputs / "models").iterdir()
    phone = tmp_path / "phone.heic"
    phone.write_bytes(b"\x00\x00\x00\x18ftypheic")
    tiff = tmp_path / "tif" / "class_1" / "img_000.tif"
    result = _invoke(predict_main, "--model", model, tiff, phone)
    assert f"{tiff}: class_1" in result.output
    assert f"skipped (unsupported format; supported: .bmp, .gif, .jpeg, .jpg, .png, .tif, " \
           f".tiff, .webp): {phone}" in result.output


@pytest.mark.parametrize(("name", "guess"), [("resnet", "resnet50"), ("vgg", "vgg16"),
                                             ("efficientnet_lite", "efficientnet_lite0")])
def test_unknown_backbone_suggests_the_closest(name: str, guess: str) -> None:
    with pytest.raises(registry.BackboneError, match=f"did you mean .*{guess}"):
        registry.get_spec(name)


def test_unknown_model_suggests_the_closest() -> None:
    with pytest.raises(ModelError, match="unknown model 'xgboost'; did you mean xgb?"):
        get_model("xgboost")
    with pytest.raises(ModelError) as error:
        get_model("forest")
    assert "did you mean" not in str(error.value)
    for other_name, model in (("LogisticRegression", "logreg"), ("lr", "logreg"),
                              ("random_forest", "rf"), ("SVC", "svm"), ("k-neighbors", "knn")):
        with pytest.raises(ModelError, match=f"'{other_name}'; did you mean {model}\\? choose"):
            get_model(other_name)


def test_offline_imagenet_error_suggests_the_offline_backbone(tmp_path: Path, monkeypatch
                                                              ) -> None:
    from keras.src.applications import vgg16
    from keras.src.backend import config

    monkeypatch.setattr(config, "_KERAS_DIR", str(tmp_path / "keras"))
    monkeypatch.setattr(vgg16, "WEIGHTS_PATH_NO_TOP", "http://127.0.0.1:9/vgg16_notop.h5")
    with pytest.raises(registry.BackboneError, match="--backbone efficientnet_lite0"):
        registry.build("vgg16", weights="imagenet", pooling="avg", input_size=32)


def test_listings_show_what_exists() -> None:
    listed = _invoke(extract_main, "--list-backbones")  # no --dataset needed
    assert listed.exit_code == 0, listed.output
    rows = {line.split()[0]: line.split() for line in listed.output.splitlines()[2:] if line}
    assert set(registry.BACKBONES) <= set(rows)
    assert rows["vgg16"][3] == "25,088" and rows["resnet50"][3] == "2,048"
    assert "no download" in " ".join(rows["efficientnet_lite0"])
    assert "download once" in " ".join(rows["densenet121"])
    models = _invoke(classify_main, "--list-models")
    assert models.exit_code == 0
    assert "--grid C: 0.0001, 0.001" in models.output
    assert all(f"\n{name} " in "\n" + models.output for name in ("logreg", "rf", "xgb", "knn"))


@pytest.mark.parametrize(("command", "prog"), [(extract_main, "extract"),
                                               (classify_main, "classify"),
                                               (predict_main, "predict")])
def test_help_ends_with_examples(command, prog: str) -> None:
    result = _invoke(command, "--help")
    lines = [line.strip() for line in result.output.splitlines() if line.strip()]
    examples = lines[lines.index("Examples:") + 1:]
    assert len(examples) == 3 and all(line.startswith(f"{prog} --") for line in examples)
