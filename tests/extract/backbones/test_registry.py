"""The backbone registry builds: weights files, unreachable ImageNet weights, the
EfficientNet stem, and random weights drawn the same whatever else draws."""

import socket

import numpy as np
import pytest

from extract import featurefile
from extract.backbones import registry
from extract.scan import scan
from tests.helpers.extracting import SIZE, extract_small, reference_features
from tests.helpers.imagefolders import make_folder


def test_weights_file_is_loaded_and_recorded_by_sha256(tmp_path):
    root = make_folder(tmp_path / "data", classes=2, per_class=2, ext="png")
    model = registry.build("vgg16", weights="random", pooling="avg", input_size=SIZE)
    for variable in model.trainable_variables:  # weights unlike the seeded random ones
        variable.assign(variable * 0.5)
    weights = tmp_path / "mine.weights.h5"
    model.save_weights(weights)
    out = tmp_path / "f.h5"
    result = extract_small(root, out, "--weights", str(weights), "--pooling", "avg")
    assert result.exit_code == 0, result.output
    got = featurefile.read_features(out)
    assert got.attrs["weights"] == registry.weights_identity(str(weights))
    assert got.attrs["weights"].startswith("sha256:")
    expected = reference_features(model, "vgg16", scan(root).absolute(), SIZE)
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
