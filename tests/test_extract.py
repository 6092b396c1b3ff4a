"""The extract stage end to end: pipeline fidelity, odd inputs, cache, weights, CLI."""

import os
import socket

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from imagefolders import class_image, make_folder
from PIL import Image

from extract import cache, featurefile
from extract.backbones import registry
from extract.cli import main
from extract.extraction import run
from extract.plan import ROW_ORDER, plan
from extract.scan import scan
from extract.settings import RunOptions, Settings

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
    batch = registry.preprocess_function(name)(np.stack(images))
    return model.predict(batch, verbose=0)


def test_features_in_the_file_equal_the_backbones_own_output(tmp_path):
    root = make_folder(tmp_path / "data", classes=2, per_class=5, ext="png")
    out = tmp_path / "f.h5"
    images = scan(root)
    outcome = run(images, Settings("vgg16", "random", "avg", SIZE), out,
                  options=RunOptions(batch_size=3, buffer_size=4, shard_size=4),
                  log=lambda _: None)
    assert outcome.rows == 10 and outcome.feature_dim == 512 and outcome.action == "created"
    model = registry.build("vgg16", weights="random", pooling="avg", input_size=SIZE)
    got = featurefile.read_features(out)
    rows = plan(images)  # the file's row order
    assert got.paths == rows.paths and got.y.tolist() == rows.labels
    expected = _reference_features(model, "vgg16", [str(root / p) for p in rows.paths], SIZE)
    np.testing.assert_allclose(got.X, expected, rtol=1e-4, atol=1e-4)


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
    assert "created: 9 rows, 3 skipped" in result.output
    assert "%|" not in result.output  # stderr is no terminal here: no progress bar frames
    for name in ("empty.jpg", "text.jpg", "truncated.jpg"):
        assert f"skipped (unreadable): {root}/class_" in result.output and name in result.output
    got = featurefile.read_features(tmp_path / "f.h5")
    assert sorted(os.path.basename(p) for p in got.skipped) == [
        "empty.jpg", "text.jpg", "truncated.jpg"]
    assert {"class_0/gray.jpg", "class_0/alpha.png", "class_1/palette.png",
            "class_1/cmyk.jpg", "class_1/anim.gif"} <= set(got.paths)


def test_same_command_twice_reuses_the_file(tmp_path):
    root = make_folder(tmp_path / "data", classes=2, per_class=3)
    out = tmp_path / "f.h5"
    assert _extract(root, out).exit_code == 0
    content = out.read_bytes()
    second = _extract(root, out)
    assert second.exit_code == 0
    assert "reusing" in second.output and "reused: 6 rows" in second.output
    assert out.read_bytes() == content
    assert not (tmp_path / "f.parts").exists() and not list(tmp_path.glob("*.lock"))


def _in_cache(tmp_path, monkeypatch, *args):
    """extract with the default output (outputs/features/ under tmp_path)."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["--backbone", "vgg16", "--weights", "random",
                                       "--image-size", str(SIZE), *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_other_folders_and_settings_get_files_of_their_own(tmp_path, monkeypatch):
    a = make_folder(tmp_path / "A" / "train", classes=2, per_class=3)
    b = make_folder(tmp_path / "B" / "train", classes=2, per_class=4)
    _in_cache(tmp_path, monkeypatch, "--dataset", str(a))
    _in_cache(tmp_path, monkeypatch, "--dataset", str(b))
    output = _in_cache(tmp_path, monkeypatch, "--dataset", str(a), "--pooling", "max")
    assert "has this folder and backbone with other settings (pooling flatten vs max)" in output
    found = cache.entries(tmp_path / "outputs" / "features")
    assert len(found) == 3
    assert {(e.attrs["dataset_root"], e.attrs["pooling"], e.rows) for e in found} == {
        (str(a), "flatten", 6), (str(b), "flatten", 8), (str(a), "max", 6)}
    assert all(e.path.name.startswith("train-vgg16-") for e in found)
    listing = CliRunner().invoke(main, ["--list"]).output.splitlines()
    names = {line.split()[0]: index for index, line in enumerate(listing)
             if line.startswith("train-vgg16-")}
    assert len(names) == 3
    for entry in found:
        head = listing[names[entry.path.name]].split()
        assert head[1:3] == [str(entry.rows), "rows"] and head[4] == "MB"
        settings = listing[names[entry.path.name] + 1]
        assert settings.startswith("    vgg16 ") and settings.endswith(
            f"; images in {entry.attrs['dataset_root']}")
    assert any("vgg16 max 32px random float32" in line for line in listing)


@pytest.mark.parametrize("change", ["added", "removed", "rewritten"])
def test_changed_images_update_the_file_computing_only_those(tmp_path, monkeypatch, change):
    root = make_folder(tmp_path / "data", classes=2, per_class=4)
    _in_cache(tmp_path, monkeypatch, "--dataset", str(root))
    (first,) = cache.entries(tmp_path / "outputs" / "features")
    before = featurefile.read_features(first.path)
    if change == "added":
        class_image(0, 9).save(root / "class_0" / "new.jpg")
    elif change == "removed":
        os.remove(root / "class_1" / "img_000.jpg")
    else:
        class_image(1, 7).save(root / "class_0" / "img_000.jpg")
        os.utime(root / "class_0" / "img_000.jpg", ns=(1, 1))  # mtime surely differs
    output = _in_cache(tmp_path, monkeypatch, "--dataset", str(root))
    computed = {"added": 1, "removed": 0, "rewritten": 1}[change]
    reused = {"added": 8, "removed": 7, "rewritten": 7}[change]
    assert f"updated: {reused + computed} rows" in output
    assert f"{computed} computed, {reused} reused" in output
    (after,) = cache.entries(tmp_path / "outputs" / "features")
    assert after.path == first.path  # the same settings: the file was replaced
    got = featurefile.read_features(after.path)
    assert got.attrs["dataset_fingerprint"] == scan(root).fingerprint
    assert got.paths == plan(scan(root)).paths
    old = dict(zip(before.paths, before.X))
    for path, row in zip(got.paths, got.X):
        if path in old and not (change == "rewritten" and path == "class_0/img_000.jpg"):
            np.testing.assert_array_equal(row, old[path])  # copied, not recomputed
    fresh = tmp_path / "fresh.h5"
    assert _extract(root, fresh).exit_code == 0
    np.testing.assert_allclose(got.X, featurefile.read_features(fresh).X, rtol=1e-5, atol=1e-5)


def test_rows_are_in_a_seeded_order_the_same_for_every_backbone(tmp_path):
    root = make_folder(tmp_path / "data", classes=3, per_class=8)
    assert _extract(root, tmp_path / "a.h5").exit_code == 0
    assert _extract(root, tmp_path / "b.h5", "--pooling", "max").exit_code == 0
    a, b = featurefile.read_features(tmp_path / "a.h5"), featurefile.read_features(tmp_path / "b.h5")
    assert a.paths == b.paths and a.attrs["row_order"] == ROW_ORDER
    assert a.paths != sorted(a.paths)
    # The classic split by index (train on the first 75%) sees every class on both sides.
    cut = int(len(a.y) * 0.75)
    assert set(a.y[:cut]) == set(a.y[cut:]) == {0, 1, 2}


def test_force_extracts_again_and_other_settings_never_replace_a_file(tmp_path):
    root = make_folder(tmp_path / "data", classes=2, per_class=3)
    out = tmp_path / "f.h5"
    assert _extract(root, out).exit_code == 0
    again = _extract(root, out, "--force")
    assert again.exit_code == 0 and "created: 6 rows" in again.output
    other = _extract(root, out, "--pooling", "max")
    assert other.exit_code == 1
    assert "holds features of other settings (pooling flatten vs max)" in other.output
    assert featurefile.read_attrs(out)["pooling"] == "flatten"


def test_an_unreadable_file_is_left_alone_not_replaced(tmp_path):
    root = make_folder(tmp_path / "data", classes=2, per_class=3)
    out = tmp_path / "f.h5"
    out.write_bytes(b"not HDF5 at all")
    result = _extract(root, out)
    assert result.exit_code == 1
    assert "not a readable HDF5 feature file" in result.output
    assert "it is left as it is" in result.output
    assert out.read_bytes() == b"not HDF5 at all"


def test_weights_file_is_loaded_and_recorded_by_sha256(tmp_path):
    root = make_folder(tmp_path / "data", classes=2, per_class=2, ext="png")
    model = registry.build("vgg16", weights="random", pooling="avg", input_size=SIZE)
    for variable in model.trainable_variables:  # weights unlike the seeded random ones
        variable.assign(variable * 0.5)
    weights = tmp_path / "mine.weights.h5"
    model.save_weights(weights)
    out = tmp_path / "f.h5"
    result = _extract(root, out, "--weights", str(weights), "--pooling", "avg")
    assert result.exit_code == 0, result.output
    got = featurefile.read_features(out)
    assert got.attrs["weights"] == registry.weights_identity(str(weights))
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
    with pytest.raises(registry.BackboneError) as err:
        registry.build("vgg16", weights="imagenet", pooling="flatten", input_size=SIZE)
    message = str(err.value)
    assert "could not obtain ImageNet weights for vgg16" in message
    assert "--weights random" in message and "--weights PATH" in message
    assert "\n" not in message


def test_file_records_its_settings_and_versions(tmp_path):
    root = make_folder(tmp_path / "data", classes=2, per_class=2)
    out = tmp_path / "f.h5"
    assert _extract(root, out, "--dtype", "float16", "--compression", "lzf").exit_code == 0
    attrs = featurefile.read_attrs(out)
    for key in ("format_version", "backbone", "weights", "pooling", "input_size",
                "preprocessing", "feature_dim", "dataset_fingerprint", "n_written",
                "complete", "created", "h5py_version", "tensorflow_version"):
        assert key in attrs, key
    assert attrs["backbone"] == "vgg16" and attrs["pooling"] == "flatten"
    assert attrs["feature_dim"] == 512 and attrs["weights"] == "random"
    with h5py.File(out) as f:
        assert f["features"].dtype == np.float16
        assert f["features"].compression == "lzf"
    assert featurefile.read_features(out).X.shape == (4, 512)


def test_help_lists_backbones_and_options():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for word in ("--dataset", "--backbone", "--pooling", "--weights", "--image-size",
                 "--batch-size", "--buffer-size", "--engine", "--precision", "--output",
                 "--force", "--list", "--shard-size", "resnet50"):
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


def test_an_imagenet_efficientnet_weights_file_keeps_the_imagenet_stem(tmp_path):
    """A weights file saved from an ImageNet EfficientNet (its stem statistics are
    ImageNet's) is normalised as Keras normalises weights="imagenet"."""
    import keras

    built = keras.applications.EfficientNetB0(include_top=False, weights=None,
                                              input_shape=(SIZE, SIZE, 3))
    norm = next(layer for layer in built.layers
                if isinstance(layer, keras.layers.Normalization))
    std = np.array(registry.IMAGENET_STDDEV_RGB)
    norm.adapt_mean.assign(np.reshape(registry.IMAGENET_MEAN_RGB, norm.adapt_mean.shape))
    norm.adapt_variance.assign(np.reshape(std**2, norm.adapt_variance.shape))
    weights = tmp_path / "imagenet_like.weights.h5"
    built.save_weights(weights)

    model = registry.build("efficientnetb0", weights=str(weights), pooling="avg",
                            input_size=SIZE)
    x = np.random.default_rng(0).uniform(0, 255, size=(2, SIZE, SIZE, 3)).astype(np.float32)
    # Keras' imagenet stem: ((x/255 - mean) / std) / sqrt(std). The same network without
    # that scaling sees it when its input is changed to match.
    plain = keras.applications.EfficientNetB0(include_top=False, weights=None,
                                              input_shape=(SIZE, SIZE, 3), pooling="avg")
    plain.load_weights(weights)
    scale = 1 / np.sqrt(std)
    shifted = x * scale + 255 * np.array(registry.IMAGENET_MEAN_RGB) * (1 - scale)
    got, want = model.predict(x, verbose=0), plain.predict(shifted.astype(np.float32), verbose=0)
    scale_of = np.abs(want).max()
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3 * scale_of)
    unscaled = plain.predict(x, verbose=0)  # what the file gave before: other features
    assert np.abs(got - unscaled).max() > 0.1 * scale_of


def test_dropping_a_mapper_frees_its_model():
    import gc
    import weakref

    from extract.mapper import build_mapper

    mapper = build_mapper(Settings("vgg16", "random", "avg", SIZE))
    mapper(np.zeros((2, SIZE, SIZE, 3), np.float32))  # traced and run once
    model = weakref.ref(mapper.model)
    del mapper
    gc.collect()
    assert model() is None


@pytest.mark.parametrize("name, size", [("vgg16", 32), ("efficientnet_lite0", 32),
                                        ("xception", 71)])
def test_random_weights_are_the_same_whatever_else_draws_from_pythons_random(name, size):
    """A Dask worker's event loop draws from Python's `random` while the model builds."""
    import random
    import threading

    first = registry.build(name, weights="random", pooling="avg", input_size=size)
    stop = threading.Event()

    def draw() -> None:
        while not stop.is_set():
            random.random()

    other = threading.Thread(target=draw)
    other.start()
    try:
        random.seed(99)
        second = registry.build(name, weights="random", pooling="avg", input_size=size)
    finally:
        stop.set()
        other.join()
    for a, b in zip(first.get_weights(), second.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    kernels = [w for w in first.get_weights() if w.ndim == 4]
    assert all(kernel.std() > 0 for kernel in kernels)
    assert not np.array_equal(kernels[0][..., 0], kernels[0][..., 1])  # drawn, not copied


@pytest.mark.parametrize("failure", ["interrupted", "genuine"])
def test_ctrl_c_during_the_openvino_conversion_is_an_interrupt_not_a_traceback(
    tmp_path, monkeypatch, failure
):
    """OpenVINO hands a Ctrl-C back inside a RuntimeError; any other error stays one."""
    import openvino

    message = {"interrupted": "Converting input model\nKeyboardInterrupt: ",
               "genuine": "Converting input model\nunsupported operation Foo"}[failure]

    def convert_model(*args, **kwargs):
        raise RuntimeError(f"Check 'false' failed at src/frontends/frontend.cpp:\n{message}")

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # nothing converted yet
    monkeypatch.setattr(openvino, "convert_model", convert_model)
    root = make_folder(tmp_path / "data", classes=2, per_class=2)
    result = _extract(root, tmp_path / "f.h5", "--engine", "openvino")
    if failure == "interrupted":
        assert result.exit_code == 130, result.output
        assert result.output.splitlines()[-1] == (
            "interrupted: no shard was finished yet; run the same command again")
        assert "Traceback" not in result.output and "RuntimeError" not in result.output
    else:
        assert isinstance(result.exception, RuntimeError), result.output
        assert "unsupported operation Foo" in str(result.exception)
    assert not (tmp_path / "f.h5").exists()


def test_a_small_dataset_makes_a_small_file(tmp_path):
    root = make_folder(tmp_path / "data", classes=2, per_class=3)
    out = tmp_path / "f.h5"
    assert _extract(root, out, "--pooling", "avg").exit_code == 0
    rows = featurefile.read_features(out).X
    assert rows.shape[0] == 6
    assert out.stat().st_size < 100_000 + 10 * rows.nbytes  # not a whole 4 MiB chunk
