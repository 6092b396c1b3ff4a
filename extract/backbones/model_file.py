"""The user's own model file as the backbone: `extract --backbone MODEL.onnx | MODEL.xml`.

OpenVINO reads the file (ONNX directly, or its own .xml with the .bin beside it). This
module checks that the model takes one batch of images, reads its layout (NCHW or NHWC)
and input size from the input's shape, lists its outputs, decides the pooling an output
takes by its rank, and hashes the files the model consists of: that sha256 is the
model's identity, as a weights file's is. Every refusal is one line naming the file or
the option.
OpenVINO and onnx load inside the functions that need them, so `extract --help` and the
checks of a built-in backbone's options never pay for them.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.errors import UserError
from extract.backbones import preprocessing
from extract.settings import Settings

# The poolings an output takes, by its rank; the first is the default.
POOLINGS_BY_RANK = {4: ("avg", "max", "flatten"),  # a feature map
                    3: ("cls", "avg"),  # a token sequence: the first token, or the others' mean
                    2: ("none",)}  # a feature vector, used as it is
POOLINGS = ("avg", "max", "flatten", "cls", "none")
KINDS = {4: "a feature map", 3: "a token sequence", 2: "a feature vector"}
IMAGE_INPUT = "one batch of RGB images, (N, 3, H, W) or (N, H, W, 3)"
OPSET_ADVICE = ("export it again at an older opset with the exporter's --opset flag "
                "(optimum-cli export onnx --opset 17, torch.onnx.export(..., opset_version=17), "
                "python -m tf2onnx.convert --opset 17), or upgrade openvino")


class ModelFileError(UserError):
    """A model file, or an option for one, that cannot be used; one line says why."""


class ModelFileOptionError(ModelFileError):
    """An option that does not go with the model file, or with a built-in backbone: the
    command line's fault (a usage error), where a ModelFileError may be the file's."""


@dataclass(frozen=True)
class Output:
    """One output of the model: its name, its shape as OpenVINO shows it, its rank."""

    name: str
    names: frozenset[str]  # every tensor name it goes by
    shape: str
    rank: int | None  # None: not fixed

    def pooling(self, asked: str | None) -> str:
        """The pooling `asked` for (None: this rank's default), checked against the rank."""
        if self.rank not in POOLINGS_BY_RANK:
            raise ModelFileError(
                f"output {self.name} {self.shape} is not a 4-D feature map, a 3-D token "
                "sequence or a 2-D feature vector; pick another with --model-output")
        choices = POOLINGS_BY_RANK[self.rank]
        if asked is None:
            return choices[0]
        if asked not in choices:
            raise ModelFileOptionError(f"--pooling {asked}: output {self.name} {self.shape} is "
                                 f"{KINDS[self.rank]}, which takes {' or '.join(choices)}")
        return asked


@dataclass(frozen=True)
class ModelFile:
    """What extract needs to know of a model file, read from its input and outputs."""

    path: Path
    layout: str  # NCHW or NHWC
    input_size: int | None  # fixed by the input's shape, else None
    outputs: tuple[Output, ...]

    def output(self, name: str | None) -> Output:
        """The output called `name` (None: the first)."""
        if name is None:
            return self.outputs[0]
        for output in self.outputs:
            if name == output.name or name in output.names:
                return output
        listed = ", ".join(f"{o.name} {o.shape}" for o in self.outputs)
        raise ModelFileOptionError(f"--model-output {name}: {self.path.name} has no such "
                                   "output; "
                             f"its outputs: {listed}")

    def size(self, image_size: int | None) -> int:
        """The input size: fixed by the model, or `image_size` (--image-size)."""
        if self.input_size is None:
            if image_size is None:
                raise ModelFileOptionError(f"--image-size N is required: {self.path.name} "
                                           "does not fix its input size (224 is usual)")
            return image_size
        if image_size not in (None, self.input_size):
            raise ModelFileOptionError(f"--image-size {image_size}: {self.path.name} takes "
                                       f"{self.input_size} px images only; leave "
                                       "--image-size out")
        return self.input_size


def _present(path: Path) -> None:
    """Refuse a missing file, and an .xml without its .bin."""
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file" if not path.exists()
                             else f"{path}: not a file")
    if path.suffix.lower() == ".xml" and not path.with_suffix(".bin").is_file():
        raise ModelFileError(f"{path}: no {path.with_suffix('.bin').name} beside it "
                             "(an OpenVINO model is the .xml and the .bin of the same name)")


def files_of(path: Path) -> list[Path]:
    """The files the model consists of: the .xml and its .bin; the .onnx and any
    external data files it names (exports of large models keep weights beside it)."""
    _present(path)
    if path.suffix.lower() == ".xml":
        return [path, path.with_suffix(".bin")]
    external = [path.parent / name for name in _external_data(str(path), *_stamp(path))]
    for data in external:
        if not data.is_file():
            raise ModelFileError(f"{path}: its weights are in {data.name}, which is not beside "
                                 "it; copy that file too")
    return [path, *external]


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


@functools.lru_cache(maxsize=8)
def _external_data(path: str, size: int, mtime_ns: int) -> tuple[str, ...]:
    """The external data files an ONNX model's tensors name (read once per version)."""
    import onnx
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError, onnx's own errors
        raise ModelFileError(f"{path}: not an ONNX model ({last_line(exc)})") from None
    return tuple(sorted({ExternalDataInfo(tensor).location for tensor in model.graph.initializer
                         if uses_external_data(tensor)}))


def weights_identity(path: str | Path) -> str:
    """sha256:<hex> over the model's files in order (.xml then .bin; .onnx then its
    external data): what the feature file records as `weights`."""
    files = files_of(Path(path))
    return _sha256(tuple((str(f.resolve()), *_stamp(f)) for f in files))


@functools.lru_cache(maxsize=8)
def _sha256(files: tuple[tuple[str, int, int], ...]) -> str:
    """Hashed once per process while the files keep their sizes and times (a cluster
    worker checks the file for every shard)."""
    digest = hashlib.sha256()
    for name, _, _ in files:
        with open(name, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def last_line(exc: BaseException) -> str:
    """The line of an OpenVINO or protobuf message that says what went wrong (its last)."""
    lines = [line.strip(" -") for line in str(exc).splitlines() if line.strip(" -")]
    return lines[-1] if lines else exc.__class__.__name__


def _onnx_opset(path: Path) -> int | None:
    """The default-domain opset an ONNX file declares."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - only a detail for the message being written
        return None
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


def read(path: Path) -> Any:
    """The openvino.Model in the file, read by the frontend of its format (trying no
    other: a file of the wrong kind gets the message of the right one)."""
    import openvino as ov
    from openvino import frontend

    _present(path)
    framework = "onnx" if path.suffix.lower() == ".onnx" else "ir"
    reader = frontend.FrontEndManager().load_by_framework(framework)
    failures = (RuntimeError, frontend.GeneralFailure, frontend.OpConversionFailure,
                frontend.OpValidationFailure, frontend.InitializationFailure,
                frontend.NotImplementedFailure)
    try:
        return reader.convert(reader.load(str(path)))
    except failures as exc:
        if framework == "onnx":
            files_of(path)  # a missing external data file, or no ONNX at all, says so
        detail = last_line(exc)
        unconverted = re.search(r"No conversion rule found for operations: (.*)", detail)
        if framework == "onnx" and unconverted:
            opset = _onnx_opset(path)
            raise ModelFileError(
                f"{path}: OpenVINO {ov.get_version().split('-')[0]} cannot convert "
                f"{unconverted.group(1)} (the file is ONNX opset {opset}); {OPSET_ADVICE}"
            ) from None
        kind = "an ONNX model" if framework == "onnx" else "an OpenVINO model"
        raise ModelFileError(f"{path}: not {kind} OpenVINO can read ({detail})"
                             ) from None


def _dims(shape: Any) -> list[int | None]:
    return [d.get_length() if d.is_static else None for d in shape]


def _shown(shape: Any) -> str:
    """[?,257,384]: a shape with each free dimension as "?" (OpenVINO writes 1.. and the
    like for bounds it inferred)."""
    if shape.rank.is_dynamic:
        return "[...]"
    return "[" + ",".join("?" if d is None else str(d) for d in _dims(shape)) + "]"


def describe(model: Any, path: Path) -> ModelFile:
    """Layout, input size and outputs of `model`; a model that does not take one batch
    of images is refused."""
    inputs = model.inputs
    if len(inputs) != 1:
        names = ", ".join(i.get_any_name() for i in inputs) or "none"
        raise ModelFileError(f"{path}: the model takes {len(inputs)} inputs "
                             f"({names}); only a model whose input is {IMAGE_INPUT} can be used")
    shape = inputs[0].get_partial_shape()
    dims = _dims(shape) if shape.rank.is_static else []
    # A channel dimension left free (optimum's exports) is taken as ONNX's own NCHW.
    if len(dims) == 4 and (dims[1] == 3 or (dims[1] is None and dims[3] != 3)):
        layout, height, width = "NCHW", dims[2], dims[3]
    elif len(dims) == 4 and dims[3] in (3, None):
        layout, height, width = "NHWC", dims[1], dims[2]
    else:
        raise ModelFileError(f"{path}: its input {inputs[0].get_any_name()} {_shown(shape)} "
                             f"is not {IMAGE_INPUT}")
    if height is not None and width is not None and height != width:
        raise ModelFileError(f"{path}: its input is fixed at {height}x{width} px; "
                             "extract feeds square images (export it with a square input, or "
                             "with dynamic height and width)")
    outputs = tuple(
        Output(_name(o, i), frozenset(o.get_names()), _shown(o.get_partial_shape()),
               o.get_partial_shape().rank.get_length()
               if o.get_partial_shape().rank.is_static else None)
        for i, o in enumerate(model.outputs))
    return ModelFile(path, layout, height if height == width else None, outputs)


def _name(output: Any, index: int) -> str:
    return output.get_any_name() if output.get_names() else str(index)


def check_built_in(backbone: str, preprocess: str | None, model_output: str | None,
                   pooling: str | None) -> None:
    """Refuse a model file's own options with a built-in backbone."""
    for option, value in (("--preprocess", preprocess), ("--model-output", model_output)):
        if value is not None:
            raise ModelFileOptionError(f"{option} is for a model file (--backbone "
                                       f"MODEL.onnx); {backbone} brings its own "
                                       "preprocessing and output")
    if pooling in ("cls", "none"):
        raise ModelFileOptionError(f"--pooling {pooling} is for a model file's outputs; "
                                   f"{backbone} takes flatten, avg or max")


def check_options(*, preprocess: str | None, weights: str, engine: str, precision: str
                  ) -> preprocessing.Preprocessing:
    """The options any model file needs or refuses, checked before the file is read; the
    input scaling --preprocess names."""
    if engine == "tensorflow":
        raise ModelFileOptionError("--engine tensorflow: a model file runs on OpenVINO; use "
                                   "--engine openvino (or auto)")
    if precision == "float16":
        raise ModelFileOptionError("--precision float16: a model file runs on OpenVINO on the "
                                   "CPU; use float32 or bfloat16")
    if weights != "imagenet":
        raise ModelFileOptionError(f"--weights {weights}: a model file carries its own "
                                   "weights; leave --weights out")
    if preprocess is None:
        raise ModelFileOptionError(f"--preprocess is required with a model file: choose "
                                   f"{preprocessing.DESCRIPTION}")
    try:
        return preprocessing.parse(preprocess)
    except preprocessing.PreprocessError as exc:
        raise ModelFileOptionError(str(exc)) from None


def settings(backbone: str, *, preprocess: str | None, model_output: str | None,
             pooling: str | None, image_size: int | None, weights: str, engine: str,
             precision: str, dtype: str) -> Settings:
    """The settings of an extraction through the model file `backbone`, every option
    checked against the file (the file is read here, so a bad one fails at once)."""
    path = Path(os.path.abspath(Path(backbone).expanduser()))  # symlinks kept, ".." gone
    scaling = check_options(preprocess=preprocess, weights=weights, engine=engine,
                            precision=precision)
    described = describe(read(path), path)
    output = described.output(model_output)
    return Settings(str(path), weights_identity(path), output.pooling(pooling),
                    described.size(image_size), dtype, "openvino", precision,
                    preprocessing=scaling.label, model_output=output.name)
