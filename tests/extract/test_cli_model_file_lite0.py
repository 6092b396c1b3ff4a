"""Proof on real weights, offline: the Keras EfficientNet-Lite0 with its ImageNet weights
(from its pip package) exported to ONNX by tf2onnx, run as `extract --backbone
lite0.onnx`, gives the features of `--backbone efficientnet_lite0` on real flowers17
photos, and logreg the same accuracy on them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from extract.backbones import registry
from extract.cli import main as extract_main
from extract.featurefile import read_features
from tests.helpers.classifying import FAST
from tests.helpers.classifying import run as classify
from tests.helpers.imagefolders import FLOWERS17_JPG

# Three purple flowers, hard to tell apart, so the accuracy has room to differ.
FIRST_IMAGE = {"crocus": 321, "iris": 401, "bluebell": 241}
PER_CLASS = 12
# The ImageNet Lite port's own scaling, (x - 127) / 128, written as explicit values.
LITE_SCALING = "mean=127,127,127;std=128,128,128"
RELATIVE = 1e-4


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not FLOWERS17_JPG.is_dir():
        pytest.skip(f"{FLOWERS17_JPG} is absent")
    root = tmp_path_factory.mktemp("flowers") / "purple"
    for name, first in FIRST_IMAGE.items():
        (root / name).mkdir(parents=True)
        for number in range(first, first + PER_CLASS):
            os.symlink(FLOWERS17_JPG / f"image_{number:04d}.jpg",
                       root / name / f"image_{number:04d}.jpg")
    return root


@pytest.fixture(scope="module")
def lite0_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """registry.build's Lite0 (avg pooling, 224 px) exported to ONNX, once per module."""
    tf2onnx = pytest.importorskip("tf2onnx", reason="tf2onnx is a test dependency")
    import tensorflow as tf

    model = registry.build("efficientnet_lite0", weights="imagenet", pooling="avg",
                           input_size=224)
    path = tmp_path_factory.mktemp("exported") / "lite0.onnx"
    tf2onnx.convert.from_keras(
        model, input_signature=(tf.TensorSpec((None, 224, 224, 3), tf.float32, "images"),),
        opset=17, output_path=str(path))
    return path


def extract(photos: Path, out: Path, *settings: str) -> None:
    result = CliRunner().invoke(extract_main, ["--dataset", str(photos), "--output", str(out),
                                               "--engine", "openvino", *settings])
    assert result.exit_code == 0, result.output


def accuracy(features: Path, outputs: Path) -> float:
    result = classify(outputs, "--features", str(features), "--model", "logreg", *FAST,
                      "--cv", "2")
    assert result.exit_code == 0, result.output
    (metrics,) = (outputs / "reports").glob("*/metrics.json")
    return json.loads(metrics.read_text())["accuracy"]


def test_lite0_as_onnx_gives_the_native_features_and_accuracy(photos, lite0_onnx, tmp_path):
    onnx_file, native_file = tmp_path / "onnx.h5", tmp_path / "native.h5"
    extract(photos, onnx_file, "--backbone", str(lite0_onnx), "--preprocess", LITE_SCALING)
    extract(photos, native_file, "--backbone", "efficientnet_lite0")
    onnx, native = read_features(onnx_file), read_features(native_file)
    assert onnx.paths == native.paths and len(onnx.paths) == PER_CLASS * len(FIRST_IMAGE)
    assert onnx.X.shape == native.X.shape == (len(onnx.paths), 1280)
    assert np.abs(onnx.X - native.X).max() <= RELATIVE * np.abs(native.X).max()
    per_image = np.linalg.norm(onnx.X - native.X, axis=1) / np.linalg.norm(native.X, axis=1)
    assert per_image.max() <= RELATIVE
    assert accuracy(onnx_file, tmp_path / "a") == accuracy(native_file, tmp_path / "b")
