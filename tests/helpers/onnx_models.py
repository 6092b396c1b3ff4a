"""Small ONNX models made with onnx.helper for the model-file tests, and the numpy
forward pass they must agree with.

`conv_model`: a 3x3 convolution (4 channels, padding 1) and a ReLU, with three outputs:
"map" (the 4-D feature map, in the model's layout), "pooled" (its global average, 2-D)
and "tokens" (the map's pixels as a 3-D token sequence, (N, H*W, 4)).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from numpy.lib.stride_tricks import sliding_window_view
from onnx import TensorProto, helper, numpy_helper

CHANNELS = 4
WEIGHT = np.random.default_rng(7).normal(0, 0.5, (CHANNELS, 3, 3, 3)).astype(np.float32)
BIAS = np.linspace(-0.5, 0.5, CHANNELS).astype(np.float32)
OPSET = 17


def _save(path: Path, nodes: list, inputs: list, outputs: Sequence[str],
          initializers: Sequence[tuple[str, np.ndarray]] = (), opset: int = OPSET
          ) -> Path:
    graph = helper.make_graph(
        nodes, "graph", inputs,
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in outputs],
        [numpy_helper.from_array(array, name) for name, array in initializers])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8  # what every OpenVINO since 2023 reads
    onnx.save(model, str(path))
    return path


def conv_model(path: Path, *, layout: str = "NCHW", size: int | None = None,
               batch: int | None = None, channels: int | None = 3) -> Path:
    """The three-output model at `path`: input (batch, 3, size, size) or (batch, size,
    size, 3); None leaves a dimension free (the channels too, as optimum exports do)."""
    side = size or "side"
    depth = channels or "channels"
    shape = [batch or "batch", depth, side, side] if layout == "NCHW" else [batch or "batch",
                                                                             side, side, depth]
    nodes = []
    source = "images"
    if layout == "NHWC":
        nodes.append(helper.make_node("Transpose", ["images"], ["nchw"], perm=[0, 3, 1, 2]))
        source = "nchw"
    nodes += [
        helper.make_node("Conv", [source, "weight", "bias"], ["conv"], kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("GlobalAveragePool", ["relu"], ["global"]),
        helper.make_node("Flatten", ["global"], ["pooled"], axis=1),
        helper.make_node("Reshape", ["relu", "flat_shape"], ["flat"]),
        helper.make_node("Transpose", ["flat"], ["tokens"], perm=[0, 2, 1]),
    ]
    if layout == "NHWC":
        nodes.append(helper.make_node("Transpose", ["relu"], ["map"], perm=[0, 2, 3, 1]))
    else:
        nodes.append(helper.make_node("Identity", ["relu"], ["map"]))
    inputs = [helper.make_tensor_value_info("images", TensorProto.FLOAT, shape)]
    return _save(path, nodes, inputs, ["map", "pooled", "tokens"],
                 [("weight", WEIGHT), ("bias", BIAS),
                  ("flat_shape", np.array([0, CHANNELS, -1], np.int64))])


def numpy_map(images: np.ndarray) -> np.ndarray:
    """The convolution and ReLU in numpy: (N, H, W, 3) images to the (N, 4, H, W) map."""
    padded = np.pad(images.astype(np.float64).transpose(0, 3, 1, 2),
                    ((0, 0), (0, 0), (1, 1), (1, 1)))
    windows = sliding_window_view(padded, (3, 3), axis=(2, 3))  # (N, 3, H, W, 3, 3)
    out = np.einsum("nchwij,ocij->nohw", windows, WEIGHT) + BIAS[None, :, None, None]
    return np.maximum(out, 0.0)


def numpy_tokens(images: np.ndarray) -> np.ndarray:
    """The "tokens" output in numpy: (N, H*W, 4), row-major over the pixels."""
    feature_map = numpy_map(images)
    return feature_map.reshape(len(images), CHANNELS, -1).transpose(0, 2, 1)


def two_input_model(path: Path) -> Path:
    """A model of two image inputs (an image pair), which extract cannot feed."""
    spec = ["batch", 3, 8, 8]
    return _save(path, [helper.make_node("Add", ["a", "b"], ["sum"])],
                 [helper.make_tensor_value_info(name, TensorProto.FLOAT, spec)
                  for name in ("a", "b")], ["sum"])


def token_input_model(path: Path) -> Path:
    """A text-like model: its input is (batch, 77), not images."""
    return _save(path, [helper.make_node("Relu", ["ids"], ["out"])],
                 [helper.make_tensor_value_info("ids", TensorProto.FLOAT, ["batch", 77])],
                 ["out"])


def future_opset_model(path: Path, opset: int = 99) -> Path:
    """A model of an ONNX opset newer than any OpenVINO reads, using an operation that
    only that opset has."""
    return _save(path, [helper.make_node("FutureOperation", ["images"], ["out"])],
                 [helper.make_tensor_value_info("images", TensorProto.FLOAT,
                                                ["batch", 3, 8, 8])], ["out"], opset=opset)
