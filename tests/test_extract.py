"""The extract stage end to end: pipeline fidelity, odd inputs, cache, weights, CLI."""

import os
import socket

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from imagefolders import class_image, make_folder
from PIL import Image

from extract import backbones, store
from extract.cli import main
from extract.runner import Settings, run
from extract.scan import scan

SIZE = 32  # the smallest input VGG16 accepts; keeps every test fast


def _extract(root, out, *extra):
    args = ["--dataset", str(root), "--backbone", "vgg16", "--weights", "random",
            "--image-size", str(SIZE), "--output", str(out), *extra]
    return CliRunner().invoke(main, args)


def _reference_features(model, name, files, size):
    """The backbone's own output on images decoded outside the pipeline."""
    import tensorflow as tf

    images = []
    for path in files:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        images.append(tf.image.resize(rgb, (size, size), method="bilinear").numpy())
    batch = backbones.preprocess_function(name)(np.stack(images))
    return model.predict(batch, verbose=0)


def test_features_in_the_file_equal_the_backbones_own_output(tmp_path):
    root = make_folder(tmp_path / "data", classes=2, per_class=5, ext="png")
    out = tmp_path / "f.h5"
    images = scan(root)
    outcome = run(images, Settings("vgg16", "random", "avg", SIZE), out, batch_size=3,
                  buffer_size=4, log=lambda _: None)
    assert outcome.written == 10 and outcome.feature_dim == 512
    model = backbones.build("vgg16", weights="random", pooling="avg", input_size=SIZE)
    expected = _reference_features(model, "vgg16", images.absolute(), SIZE)
    got = store.read_features(out)
    np.testing.assert_allclose(got.X, expected, rtol=1e-4, atol=1e-4)
    assert got.paths == images.paths and got.y.tolist() == images.labels


def test_odd_images_become_rgb_and_broken_ones_are_skipped_and_listed(tmp_path):
    root = tmp_path / "data"
    make_folder(root, classes=2, per_class=2)
    colour = class_image(0, 0)
    colour.convert("L").save(root / "class_0" / "gray.jpg")
    colour.convert("RGBA").save(root / "class_0" / "alpha.png")
    colour.convert("P").save(root / "class_1" / "palette.png")
    colour.convert("CMYK").save(root / "class_1" / "cmyk.jpg")
    colour.save(root / "class_1" / "anim.gif", save_all=True,
                append_images=[class_image(1, 1)])
    (root / "class_0" / "empty.jpg").write_bytes(b"")
    (root / "class_0" / "text.jpg").write_text("this is not a JPEG")
    good = (root / "class_1" / "img_000.jpg").read_bytes()
    (root / "class_1" / "truncated.jpg").write_bytes(good[: len(good) // 2])
    result = _extract(root, tmp_path / "f.h5")
    assert result.exit_code == 0, result.output
    assert "9 images written, 3 skipped" in result.output
    for name in ("empty.jpg", "text.jpg", "truncated.jpg"):
        assert f"skipped (unreadable): {root}/class_" in result.output and name in result.output
    got = store.read_features(tmp_path / "f.h5")
    assert sorted(os.path.basename(p) for p in got.skipped) == [
        "empty.jpg", "text.jpg", "truncated.jpg"]
    assert {"class_0/gray.jpg", "class_0/alpha.png", "class_1/palette.png",
            "class_1/cmyk.jpg", "class_1/anim.gif"} <= set(got.paths)


def test_same_command_twice_reuses_the_file(tmp_path):
    root = make_folder(tmp_path / "data", classes=2, per_class=3)
    out = tmp_path / "f.h5"
    assert _extract(root, out).exit_code == 0
    stamp = os.stat(out).st_mtime_ns
    second = _extract(root, out)
    assert second.exit_code == 0
    assert "reusing" in second.output and "reused: 6 images written" in second.output
    assert os.stat(out).st_mtime_ns == stamp


@pytest.mark.parametrize("change", ["added", "removed", "rewritten", "settings", "force"])
def test_changed_dataset_or_settings_or_force_extracts_anew(tmp_path, change):
    root = make_folder(tmp_path / "data", classes=2, per_class=3)
    out = tmp_path / "f.h5"
    assert _extract(root, out).exit_code == 0
    extra: list[str] = []
    if change == "added":
        class_image(0, 9).save(root / "class_0" / "new.jpg")
    elif change == "removed":
        os.remove(root / "class_1" / "img_000.jpg")
    elif change == "rewritten":
        class_image(1, 7).save(root / "class_0" / "img_000.jpg")
    elif change == "settings":
        extra = ["--pooling", "max"]
    else:
        extra = ["--force"]
    again = _extract(root, out, *extra)
    assert again.exit_code == 0, again.output
    assert "extracted:" in again.output and "reused" not in again.output
    attrs = store.read_attrs(out)
    assert attrs["dataset_fingerprint"] == scan(root).fingerprint
    assert attrs["n_written"] == len(scan(root))


def test_weights_file_is_loaded_and_recorded_by_sha256(tmp_path):
    root = make_folder(tmp_path / "data", classes=2, per_class=2, ext="png")
    model = backbones.build("vgg16", weights="random", pooling="avg", input_size=SIZE)
    for variable in model.trainable_variables:  # weights unlike the seeded random ones
        variable.assign(variable * 0.5)
    weights = tmp_path / "mine.weights.h5"
    model.save_weights(weights)
    out = tmp_path / "f.h5"
    result = _extract(root, out, "--weights", str(weights), "--pooling", "avg")
    assert result.exit_code == 0, result.output
    got = store.read_features(out)
    assert got.attrs["weights"] == backbones.weights_identity(str(weights))
    assert got.attrs["weights"].startswith("sha256:")
    expected = _reference_features(model, "vgg16", scan(root).absolute(), SIZE)
    np.testing.assert_allclose(got.X, expected, rtol=1e-4, atol=1e-4)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_imagenet_weights_unreachable_names_both_alternatives(tmp_path, monkeypatch):
    from keras.src.applications import vgg16
    from keras.src.backend import config

    monkeypatch.setattr(config, "_KERAS_DIR", str(tmp_path / "keras"))
    monkeypatch.setattr(vgg16, "WEIGHTS_PATH_NO_TOP",
                        f"http://127.0.0.1:{_closed_port()}/vgg16_notop.h5")
    with pytest.raises(backbones.BackboneError) as err:
        backbones.build("vgg16", weights="imagenet", pooling="flatten", input_size=SIZE)
    message = str(err.value)
    assert "could not obtain ImageNet weights for vgg16" in message
    assert "--weights random" in message and "--weights PATH" in message
    assert "\n" not in message


def test_file_records_its_settings_and_versions(tmp_path):
    root = make_folder(tmp_path / "data", classes=2, per_class=2)
    out = tmp_path / "f.h5"
    assert _extract(root, out, "--dtype", "float16", "--compression", "lzf").exit_code == 0
    attrs = store.read_attrs(out)
    for key in ("format_version", "backbone", "weights", "pooling", "input_size",
                "preprocessing", "feature_dim", "dataset_fingerprint", "n_written",
                "complete", "created", "h5py_version", "tensorflow_version"):
        assert key in attrs, key
    assert attrs["backbone"] == "vgg16" and attrs["pooling"] == "flatten"
    assert attrs["feature_dim"] == 512 and attrs["weights"] == "random"
    with h5py.File(out) as f:
        assert f["features"].dtype == np.float16
        assert f["features"].compression == "lzf"
    assert store.read_features(out).X.shape == (4, 512)


def test_help_lists_backbones_and_options():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for word in ("--dataset", "--backbone", "--pooling", "--weights", "--image-size",
                 "--batch-size", "--buffer-size", "--output", "--force", "resnet50"):
        assert word in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backbone", "alexnet"], "unknown backbone 'alexnet'; choose one of: vgg16"),
        (["--batch-size", "0"], "Invalid value for '--batch-size': must be a positive"),
        (["--batch-size", "-3"], "Invalid value for '--batch-size': must be a positive"),
        (["--pooling", "mean"], "Invalid value for '--pooling'"),
        (["--weights", "/no/such.h5"], "--weights: /no/such.h5 is not 'imagenet', 'random'"),
    ],
)
def test_bad_options_are_one_line_errors(tmp_path, args, message):
    root = make_folder(tmp_path / "data", classes=2, per_class=1)
    result = CliRunner().invoke(main, ["--dataset", str(root), "--weights", "random", *args])
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_missing_folder_and_single_class_are_one_line_errors(tmp_path):
    result = _extract(tmp_path / "absent", tmp_path / "f.h5")
    assert result.exit_code == 1
    assert f"dataset folder not found: {tmp_path / 'absent'}" in result.output
    make_folder(tmp_path / "one", classes=1, per_class=2)
    result = _extract(tmp_path / "one", tmp_path / "f.h5")
    assert result.exit_code == 1 and "need at least 2" in result.output
    assert not (tmp_path / "f.h5").exists()
