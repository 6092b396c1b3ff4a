"""A model file's mapper against a numpy forward pass: NCHW and NHWC inputs, every
pooling of a 4-D map, of 3-D tokens and a 2-D output, on hand-built ONNX graphs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from extract.backbones import model_file
from extract.mapper import build_mapper
from extract.settings import Settings
from tests.helpers import onnx_models

SIZE = 8
IMAGES = np.random.default_rng(0).uniform(-1, 1, (3, SIZE, SIZE, 3)).astype(np.float32)


def settings(path: Path, output: str | None = None, pooling: str | None = None,
             size: int | None = SIZE) -> Settings:
    return model_file.settings(str(path), preprocess="none", model_output=output,
                               pooling=pooling, image_size=size, weights="imagenet",
                               engine="auto", precision="float32", dtype="float32")


def expected(layout: str, output: str, pooling: str) -> np.ndarray:
    feature_map = onnx_models.numpy_map(IMAGES)  # (N, C, H, W)
    tokens = onnx_models.numpy_tokens(IMAGES)
    return {
        ("map", "avg"): feature_map.mean(axis=(2, 3)),
        ("map", "max"): feature_map.max(axis=(2, 3)),
        # flatten keeps the model's own order: channels first in NCHW, last in NHWC
        ("map", "flatten"): (feature_map if layout == "NCHW"
                             else feature_map.transpose(0, 2, 3, 1)).reshape(len(IMAGES), -1),
        ("pooled", "none"): feature_map.mean(axis=(2, 3)),
        ("tokens", "cls"): tokens[:, 0],
        ("tokens", "avg"): tokens[:, 1:].mean(axis=1),
    }[output, pooling]


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("output,pooling", [("map", "avg"), ("map", "max"), ("map", "flatten"),
                                            ("pooled", "none"), ("tokens", "cls"),
                                            ("tokens", "avg")])
def test_rows_are_the_numpy_forward_pass_pooled(tmp_path, layout, output, pooling):
    path = onnx_models.conv_model(tmp_path / f"conv_{layout}.onnx", layout=layout)
    chosen = settings(path, output, pooling)
    mapper = build_mapper(chosen)
    rows = mapper(IMAGES)
    assert rows.dtype == np.float32 and mapper.feature_dim == rows.shape[1]
    np.testing.assert_allclose(rows, expected(layout, output, pooling), rtol=1e-5, atol=1e-5)
    assert mapper.attrs()["model_file"] == str(path)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_the_layout_is_read_from_the_input_shape(tmp_path, layout):
    path = onnx_models.conv_model(tmp_path / "conv.onnx", layout=layout)
    assert model_file.describe(model_file.read(path), path).layout == layout


def test_a_free_channel_dimension_is_nchw(tmp_path):
    """optimum exports pixel_values as (batch, num_channels, height, width), all free."""
    path = onnx_models.conv_model(tmp_path / "free.onnx", channels=None)
    assert model_file.describe(model_file.read(path), path).layout == "NCHW"
    rows = build_mapper(settings(path, "pooled"))(IMAGES)
    np.testing.assert_allclose(rows, expected("NCHW", "pooled", "none"), rtol=1e-5, atol=1e-5)


def test_each_rank_has_its_default_pooling_and_the_first_output_is_the_default(tmp_path):
    path = onnx_models.conv_model(tmp_path / "conv.onnx")
    assert (settings(path).model_output, settings(path).pooling) == ("map", "avg")
    assert settings(path, "tokens").pooling == "cls"
    assert settings(path, "pooled").pooling == "none"


def test_a_fixed_input_gives_the_size_and_a_fixed_batch_is_freed(tmp_path):
    """A model exported at batch 1 and 8 px: its size needs no --image-size, and the
    mapper still takes whole batches."""
    path = onnx_models.conv_model(tmp_path / "fixed.onnx", size=SIZE, batch=1)
    chosen = settings(path, "pooled", size=None)
    assert chosen.input_size == SIZE
    rows = build_mapper(chosen)(IMAGES)
    np.testing.assert_allclose(rows, expected("NCHW", "pooled", "none"), rtol=1e-5, atol=1e-5)


def test_the_settings_record_the_file_its_sha256_and_every_choice(tmp_path):
    path = onnx_models.conv_model(tmp_path / "conv.onnx")
    chosen = model_file.settings(str(path), preprocess="imagenet", model_output="tokens",
                                 pooling="avg", image_size=16, weights="imagenet",
                                 engine="openvino", precision="float32", dtype="float16")
    assert chosen == Settings(str(path), "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest(),
                              "avg", 16, "float16", "openvino", "float32",
                              preprocessing="imagenet", model_output="tokens")
    assert chosen.is_model_file and chosen.name == "conv"


def test_an_openvino_model_hashes_its_xml_and_its_bin(tmp_path):
    import openvino as ov

    onnx_path = onnx_models.conv_model(tmp_path / "conv.onnx")
    xml = tmp_path / "conv.xml"
    ov.save_model(ov.Core().read_model(onnx_path), xml, compress_to_fp16=False)
    both = xml.read_bytes() + xml.with_suffix(".bin").read_bytes()
    assert model_file.weights_identity(xml) == "sha256:" + hashlib.sha256(both).hexdigest()
    rows = build_mapper(settings(xml, "pooled"))(IMAGES)
    np.testing.assert_allclose(rows, expected("NCHW", "pooled", "none"), rtol=1e-5, atol=1e-5)


def test_external_weights_beside_an_onnx_file_are_read_and_hashed(tmp_path):
    """Exports of large models keep their weights in a data file beside the .onnx."""
    import onnx

    path = onnx_models.conv_model(tmp_path / "conv.onnx")
    onnx.save_model(onnx.load(str(path)), str(path), save_as_external_data=True,
                    location="conv.onnx.data", size_threshold=0)
    data = tmp_path / "conv.onnx.data"
    assert model_file.files_of(path) == [path, data]
    both = path.read_bytes() + data.read_bytes()
    assert model_file.weights_identity(path) == "sha256:" + hashlib.sha256(both).hexdigest()
    rows = build_mapper(settings(path, "pooled"))(IMAGES)
    np.testing.assert_allclose(rows, expected("NCHW", "pooled", "none"), rtol=1e-5, atol=1e-5)
    data.rename(tmp_path / "elsewhere.data")
    with pytest.raises(model_file.ModelFileError,
                       match="its weights are in conv.onnx.data, which is not beside it"):
        model_file.read(path)
