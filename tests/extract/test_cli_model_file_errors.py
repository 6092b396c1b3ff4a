"""`extract --backbone MODEL.onnx`: every bad model file or option is one line, before
any image is read."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from extract.cli import main
from tests.helpers import onnx_models
from tests.helpers.classifying import assert_one_line_error
from tests.helpers.imagefolders import make_folder


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of model files, good and bad, and an image folder beside them."""
    folder = tmp_path_factory.mktemp("models")
    onnx_models.conv_model(folder / "conv.onnx")
    onnx_models.conv_model(folder / "fixed.onnx", size=8)
    onnx_models.two_input_model(folder / "pair.onnx")
    onnx_models.token_input_model(folder / "text.onnx")
    onnx_models.future_opset_model(folder / "future.onnx")
    (folder / "garbage.onnx").write_bytes(b"not a model at all")
    (folder / "garbage.xml").write_text("not xml")
    (folder / "garbage.bin").write_bytes(b"")
    (folder / "lonely.xml").write_text("<net/>")
    (folder / "weights.pt").write_bytes(b"PK")
    make_folder(folder / "photos", classes=2, per_class=2)
    return folder


def extract(models: Path, backbone: str, *extra: str) -> object:
    return CliRunner().invoke(main, ["--dataset", str(models / "photos"), "--backbone",
                                     str(models / backbone), "--output",
                                     str(models / "out.h5"), *extra])


@pytest.mark.parametrize("backbone,extra,message", [
    ("missing.onnx", ["--preprocess", "imagenet"], "missing.onnx: no such model file"),
    ("garbage.onnx", ["--preprocess", "imagenet"],
     "garbage.onnx: not an ONNX model (Error parsing message"),
    ("garbage.xml", ["--preprocess", "imagenet"],
     "garbage.xml: not an OpenVINO model OpenVINO can read"),
    ("lonely.xml", ["--preprocess", "imagenet"],
     "lonely.xml: no lonely.bin beside it (an OpenVINO model is the .xml and the .bin"),
    ("weights.pt", ["--preprocess", "imagenet"],
     "weights.pt: not a model file extract reads; give an ONNX model (.onnx) or an OpenVINO"),
    ("future.onnx", ["--preprocess", "imagenet"],
     ("cannot convert FutureOperation-99 (the file is ONNX opset 99); export it again at an "
      "older opset with the exporter's --opset flag")),
    ("pair.onnx", ["--preprocess", "imagenet"],
     ("pair.onnx: the model takes 2 inputs (a, b); only a model whose input is one batch of "
      "RGB images, (N, 3, H, W) or (N, H, W, 3) can be used")),
    ("text.onnx", ["--preprocess", "imagenet"],
     "text.onnx: its input ids [?,77] is not one batch of RGB images"),
    ("conv.onnx", ["--preprocess", "imagenett", "--image-size", "8"],
     "unknown --preprocess 'imagenett'; did you mean imagenet? choose imagenet, clip, "),
    ("conv.onnx", ["--image-size", "8"], "--preprocess is required with a model file: choose "),
    ("conv.onnx", ["--preprocess", "imagenet", "--image-size", "8", "--model-output", "logits"],
     ("--model-output logits: conv.onnx has no such output; its outputs: map [?,4,?,?], "
      "pooled [?,4], tokens [?,?,4]")),
    ("conv.onnx", ["--preprocess", "imagenet", "--image-size", "8", "--engine", "tensorflow"],
     "--engine tensorflow: a model file runs on OpenVINO; use --engine openvino (or auto)"),
    ("conv.onnx", ["--preprocess", "imagenet", "--image-size", "8", "--precision", "float16"],
     "--precision float16: a model file runs on OpenVINO on the CPU; use float32 or bfloat16"),
    ("conv.onnx", ["--preprocess", "imagenet", "--image-size", "8", "--model-output",
                   "tokens", "--pooling", "max"],
     "--pooling max: output tokens [?,?,4] is a token sequence, which takes cls or avg"),
    ("conv.onnx", ["--preprocess", "imagenet"],
     "--image-size N is required: conv.onnx does not fix its input size"),
    ("fixed.onnx", ["--preprocess", "imagenet", "--image-size", "16"],
     "--image-size 16: fixed.onnx takes 8 px images only; leave --image-size out"),
    ("conv.onnx", ["--preprocess", "imagenet", "--image-size", "8", "--weights", "random"],
     "--weights random: a model file carries its own weights; leave --weights out"),
])
def test_a_bad_model_file_or_option_is_one_line(models, backbone, extra, message):
    result = extract(models, backbone, *extra)
    assert_one_line_error(result, message)
    assert not (models / "out.h5").exists()


@pytest.mark.parametrize("extra,message", [
    (["--preprocess", "imagenet"], ("--preprocess is for a model file (--backbone MODEL.onnx); "
                                    "vgg16 brings its own preprocessing and output")),
    (["--model-output", "map"], "--model-output is for a model file"),
    (["--pooling", "cls"], ("--pooling cls is for a model file's outputs; vgg16 takes flatten, "
                            "avg or max")),
])
def test_a_model_file_option_with_a_built_in_backbone_is_one_line(models, extra, message):
    result = CliRunner().invoke(main, ["--dataset", str(models / "photos"), "--backbone",
                                       "vgg16", "--weights", "random", *extra])
    assert_one_line_error(result, message)
