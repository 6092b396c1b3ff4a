"""The mapper of a user's model file (`--backbone MODEL.onnx`): OpenVINO on this CPU.

The file's model is read as it is and three things are added to its graph before it is
compiled the way the built-in backbones are (extract.openvino_cpu): the input takes the
reader's (N, size, size, 3) float32 batches (OpenVINO transposes them for an NCHW
model), only the chosen output is kept, and it is pooled to one row per image. The
pixels are scaled by the reader (extract.backbones.preprocessing), in float32 at every
precision, as for the built-in backbones.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from common.hardware import cpu_model
from extract.backbones import model_file
from extract.openvino_cpu import compile_for_cpu
from extract.settings import Settings

# Slice's "to the end" on the token axis.
LAST = np.iinfo(np.int64).max


class ModelFileMapper:
    """The model file compiled for this CPU with its pooling, one request per batch."""

    on_gpu = False

    def __init__(self, settings: Settings, log: Callable[[str], None] | None = None):
        import openvino as ov

        started = time.perf_counter()
        self.path = Path(settings.backbone)
        self.precision = settings.precision
        found = model_file.weights_identity(self.path)
        if found != settings.weights:
            raise model_file.ModelFileError(
                f"{self.path}: its sha256 ({found[7:19]}...) is not the one these features "
                f"were made with ({settings.weights[7:19]}...): the file at this path changed")
        model = model_file.read(self.path)
        described = model_file.describe(model, self.path)
        graph = features_graph(model, described, settings)
        feature_size = graph.output(0).get_partial_shape()[-1]
        if feature_size.is_dynamic:
            raise model_file.ModelFileError(
                f"{self.path}: output {settings.model_output} with "
                f"--pooling {settings.pooling} has no fixed feature size")
        self.feature_dim = int(feature_size.get_length())
        self.compiled = compile_for_cpu(ov.Core(), graph, settings.precision)
        self.request = self.compiled.create_infer_request()
        if log:
            log(f"openvino: compiled {self.path.name} ({described.layout} input at "
                f"{settings.input_size} px, output {settings.model_output}, "
                f"{settings.pooling} pooling, {self.feature_dim} features) in "
                f"{time.perf_counter() - started:.1f} s")

    def __call__(self, images: Any) -> np.ndarray:
        # Outputs are copied out of the request, as OpenVINOMapper's are.
        return self.request.infer({0: np.asarray(images, dtype=np.float32)})[0]

    def attrs(self) -> dict[str, str]:
        return {"engine": "openvino", "precision": self.precision, "device": cpu_model(),
                "model_file": str(self.path)}


def features_graph(model: Any, described: model_file.ModelFile, settings: Settings) -> Any:
    """`model` taking (N, size, size, 3) float32 images to (N, D) float32 rows: the
    input fixed at the size with a free batch, the chosen output pooled."""
    import openvino as ov
    from openvino.preprocess import PrePostProcessor

    size, nchw = settings.input_size, described.layout == "NCHW"
    wanted = ov.PartialShape([-1, 3, size, size] if nchw else [-1, size, size, 3])
    if model.input(0).get_partial_shape() != wanted:
        try:
            model.reshape(wanted)
        except RuntimeError as exc:
            raise model_file.ModelFileError(
                f"{described.path}: OpenVINO cannot run it on batches of {size} px "
                f"images ({model_file.last_line(exc)}); export it with a dynamic batch axis "
                "(and height and width)") from None
    chosen = described.outputs.index(described.output(settings.model_output))
    output = model.get_results()[chosen].input_value(0)  # what feeds that result
    pooled = ov.Model([pool(output, settings.pooling, nchw)], model.get_parameters(),
                      "features")
    steps = PrePostProcessor(pooled)
    steps.input().tensor().set_element_type(ov.Type.f32)
    if nchw:
        steps.input().tensor().set_layout(ov.Layout("NHWC"))
        steps.input().model().set_layout(ov.Layout("NCHW"))
    steps.output().tensor().set_element_type(ov.Type.f32)
    return steps.build()


def pool(output: Any, pooling: str, nchw: bool) -> Any:
    """The graph node that pools `output` (a 4-D map in the input's layout, 3-D tokens
    or a 2-D vector) to (N, D)."""
    import openvino.opset13 as ops

    if pooling == "none":
        return output
    if output.get_partial_shape().rank.get_length() == 3:
        if pooling == "cls":
            return ops.gather(output, np.int64(0), np.int64(1))  # the first token
        others = ops.slice(output, np.array([1]), np.array([LAST]), np.array([1]),
                           np.array([1]))
        return ops.reduce_mean(others, np.array([1]), keep_dims=False)
    if pooling == "flatten":
        return ops.reshape(output, np.array([0, -1]), special_zero=True)
    spatial = np.array([2, 3] if nchw else [1, 2])
    reduce = ops.reduce_mean if pooling == "avg" else ops.reduce_max
    return reduce(output, spatial, keep_dims=False)
