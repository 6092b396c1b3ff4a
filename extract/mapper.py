"""The mapper: preprocessed image batches to feature rows, on one engine.

A mapper is built where it runs (a Dask worker builds its own) from `Settings`, and
holds everything heavy: the model and its compiled forward pass. Freeing the mapper
frees the model. Every engine has the same interface, so the runner, `predict` and
the benchmarks never ask which one they hold.

Engines: `tensorflow` (the reference, and the engine for NVIDIA GPUs) and `openvino`
(CPUs). Precision: float32 everywhere; bfloat16 through OpenVINO's precision hint on
CPUs with bf16 instructions, or Keras mixed precision on a GPU; float16 is Keras mixed
precision on a GPU. The checks here need neither TensorFlow nor OpenVINO to be loaded
(OpenVINO is imported only to see whether it is there), so the CLI fails fast.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from common.errors import UserError
from common.hardware import bf16_hardware, cpu_flags, cpu_model, gpu_count
from extract.backbones import registry
from extract.cache import converted_models_folder
from extract.model_file_mapper import ModelFileMapper
from extract.openvino_cpu import compile_for_cpu
from extract.settings import ENGINES, PRECISIONS, Settings

# Keras dtype policies that run each precision on the tensorflow engine.
KERAS_POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16",
                  "float16": "mixed_float16"}


class EngineError(UserError):
    """An engine or precision this machine cannot run; the message says what can."""


class Mapper(Protocol):
    """A callable from a (N, size, size, 3) float32 batch to (N, feature_dim) rows."""

    feature_dim: int
    on_gpu: bool  # the forward pass leaves the CPU cores to the reader

    def __call__(self, images: Any) -> np.ndarray: ...

    def attrs(self) -> dict[str, str]:
        """What the feature file records about how its rows were computed."""
        ...


class TensorFlowMapper:
    """The Keras model as one traced graph: faster than a predict() loop.

    The batch dimension is left open, so the short last batch reuses the same graph
    instead of tracing a second one. Rows come back as float32 at every precision.
    """

    def __init__(self, model: Any, precision: str = "float32"):
        from extract.reader import tf

        self.model = model
        self.precision = precision
        self.feature_dim = int(model.output_shape[-1])
        self.on_gpu = bool(tf.config.list_physical_devices("GPU"))
        _, height, width, channels = model.input_shape
        # Traced from a plain function, not a bound method, so the graph holds the
        # model and nothing holds the mapper: dropping the mapper frees both.
        self._forward = tf.function(
            lambda images: tf.cast(model(images, training=False), tf.float32),
            input_signature=[tf.TensorSpec([None, height, width, channels], tf.float32)],
        )

    def __call__(self, images: Any) -> np.ndarray:
        return self._forward(images).numpy()

    def attrs(self) -> dict[str, str]:
        return {"engine": "tensorflow", "precision": self.precision, "device": _tf_device()}


class OpenVINOMapper:
    """The backbone converted to OpenVINO and compiled for this CPU, one request per batch.

    The converted model is kept on disk (see `converted_model_dir`), so only the first
    run of a backbone pays for building the Keras model and converting it; later runs,
    and every other shard, read it back in well under a second.
    """

    on_gpu = False

    def __init__(self, settings: Settings, log: Callable[[str], None] | None = None):
        import openvino as ov

        self.precision = settings.precision
        self.core = ov.Core()
        path = converted_model_dir(settings) / "model.xml"
        self.conversion_s: float | None = None  # None: read back from the cache
        if not path.is_file():
            self.conversion_s = _convert(settings, path)
            if log:
                log(f"openvino: converted {settings.backbone} in {self.conversion_s:.1f} s, "
                    f"kept in {path.parent} (extract --list lists the converted models, "
                    "--prune-cache removes them)")
        else:
            if log:
                log(f"openvino: using the converted {settings.backbone} in {path.parent}")
            try:  # its time says when it was last used (extract --list)
                os.utime(path.parent)
            except OSError:
                pass  # a read-only cache serves as well
        model = self.core.read_model(path)
        self.feature_dim = int(model.output(0).get_partial_shape()[-1].get_length())
        self.compiled = compile_for_cpu(self.core, model, settings.precision)
        self.request = self.compiled.create_infer_request()

    def __call__(self, images: Any) -> np.ndarray:
        # Outputs are copied out of the request (share_outputs defaults to False), so
        # the next batch cannot overwrite rows the caller still holds.
        return self.request.infer({0: np.asarray(images, dtype=np.float32)})[0]

    def attrs(self) -> dict[str, str]:
        return {"engine": "openvino", "precision": self.precision, "device": cpu_model()}


def converted_model_dir(settings: Settings) -> Path:
    """Where the OpenVINO model for `settings` lives: named by everything that shapes it.

    Backbone, weights identity (and how random weights are drawn), pooling and input
    size decide the graph and its constants; the TensorFlow, Keras and OpenVINO versions decide how it is traced and
    converted. Precision is applied when compiling, so f32 and bf16 share one model.
    """
    import keras
    import openvino as ov
    import tensorflow as tf

    random_init = registry.random_init(settings.weights)
    identity = "\n".join([settings.backbone, registry.weights_identity(settings.weights),
                          settings.pooling, str(settings.input_size), tf.__version__,
                          keras.__version__, ov.get_version(),
                          *([random_init] if random_init else [])])
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    name = f"{settings.backbone}-{settings.pooling}-{settings.input_size}-{digest}"
    return converted_models_folder() / name


def _convert(settings: Settings, path: Path) -> float:
    """Convert the Keras backbone to OpenVINO and save it at `path`; seconds it took.

    Written into a temporary folder renamed into place, so a concurrent shard never
    reads half a model; when two convert at once, the first rename wins.
    """
    import openvino as ov

    from extract.reader import tf

    started = time.perf_counter()
    model = keras_model(settings, "float32")
    size = settings.input_size
    forward = tf.function(lambda images: model(images, training=False),
                          input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32)])
    try:
        converted = ov.convert_model(forward)
    except RuntimeError as exc:
        # A Ctrl-C while OpenVINO's frontend runs TensorFlow comes back wrapped in its
        # RuntimeError ("... Converting input model ... KeyboardInterrupt"): hand it on
        # as the interrupt it was, for the command's own one-line handling.
        if "KeyboardInterrupt" in str(exc):
            raise KeyboardInterrupt from exc
        raise
    path.parent.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=path.parent.parent, prefix=f".{path.parent.name}-"))
    try:
        # save_model would halve the weights to float16 by default: keep them exact.
        ov.save_model(converted, staging / path.name, compress_to_fp16=False)
        os.rename(staging, path.parent)
    except OSError:
        if not path.is_file():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return time.perf_counter() - started


@contextmanager
def _dtype_policy(name: str) -> Iterator[None]:
    """Keras builds layers under this dtype policy, and the previous one comes back."""
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def keras_model(settings: Settings, precision: str) -> Any:
    """The Keras backbone built under the dtype policy that runs `precision` (float16 and
    bfloat16: Keras mixed precision, float32 variables and reduced-precision compute)."""
    with _dtype_policy(KERAS_POLICIES[precision]):
        return registry.build(settings.backbone, weights=settings.weights,
                               pooling=settings.pooling, input_size=settings.input_size)


def _tf_device() -> str:
    """The GPU TensorFlow runs on, else this machine's CPU model."""
    from extract.reader import tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return str(details.get("device_name", gpus[0].name))
    return cpu_model()


def openvino_available() -> bool:
    return importlib.util.find_spec("openvino") is not None


@functools.lru_cache(maxsize=1)
def _openvino_bf16() -> bool:
    """Whether OpenVINO's CPU plugin runs bf16 here (it falls back to f32 silently)."""
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def resolve_engine(engine: str) -> str:
    """`auto`: tensorflow when a GPU is visible, else openvino (tensorflow without it)."""
    if engine not in ENGINES:
        raise EngineError(f"--engine {engine}: choose one of {', '.join(ENGINES)}")
    if engine != "auto":
        return engine
    if gpu_count() > 0 or not openvino_available():
        return "tensorflow"
    return "openvino"


def check(engine: str, precision: str) -> None:
    """Raise a one-line EngineError when this machine cannot run `engine` at `precision`."""
    if precision not in PRECISIONS:
        raise EngineError(f"--precision {precision}: choose one of {', '.join(PRECISIONS)}")
    if engine == "openvino":
        if not openvino_available():
            raise EngineError("--engine openvino: OpenVINO is not installed; "
                              "pip install openvino, or use --engine tensorflow")
        if precision == "float16":
            raise EngineError("--precision float16 runs on NVIDIA GPUs with --engine "
                              "tensorflow; on a CPU use bfloat16 or float32")
        # OpenVINO may list BF16 on a CPU that only emulates it: the flags must agree.
        flags = cpu_flags()
        hardware = bool(bf16_hardware(flags)) or not flags
        if precision == "bfloat16" and not (hardware and _openvino_bf16()):
            raise EngineError(f"--precision bfloat16: this CPU ({cpu_model()}) has no bf16 "
                              "instructions (AMX or AVX512-BF16); use --precision float32")
    elif engine == "tensorflow":
        if precision != "float32" and gpu_count() == 0:
            way_out = ("use --engine openvino --precision bfloat16" if precision == "bfloat16"
                       else "use float32 (or bfloat16 with --engine openvino)")
            raise EngineError(f"--precision {precision} on the tensorflow engine needs an "
                              f"NVIDIA GPU and none is visible; {way_out}")
    else:
        raise EngineError(f"--engine {engine}: choose one of {', '.join(ENGINES)}")


def for_prediction(engine: str | None, precision: str | None, *, openvino_only: bool = False
                   ) -> tuple[str, str, str | None]:
    """The engine and precision to rebuild a trained model's extractor with here.

    The same as the training features' when this machine can run them; otherwise the
    closest it can (the other engine first, then float32; with `openvino_only`, for a
    model file, OpenVINO at float32), with a note saying so. Bundles from before engines
    existed (None) were tensorflow at float32.
    """
    engine, precision = engine or "tensorflow", precision or "float32"
    if engine not in ENGINES[1:] or precision not in PRECISIONS:
        raise EngineError(f"the model's features were computed with engine {engine!r} at "
                          f"precision {precision!r}, which this version does not know; "
                          "upgrade offtheshelf")
    try:
        check(engine, precision)
        return engine, precision, None
    except EngineError as exc:
        reason = str(exc).split(";")[0]
    other = "openvino" if engine == "tensorflow" else "tensorflow"
    for candidate in ((other, precision), (engine, "float32"), (other, "float32")):
        if openvino_only and candidate[0] != "openvino":
            continue
        try:
            check(*candidate)
        except EngineError:
            continue
        note = (f"the model's features came from {engine} at {precision}, which this "
                f"machine cannot run ({reason}); using {candidate[0]} at {candidate[1]} instead")
        return candidate[0], candidate[1], note
    raise EngineError(f"cannot rebuild the {engine} {precision} extractor here ({reason})")


def build_mapper(settings: Settings, log: Callable[[str], None] | None = None) -> Mapper:
    """The mapper `settings` describe (TensorFlow or OpenVINO loads here, not before).

    `log` hears about slow one-off work, such as converting a model for OpenVINO.
    """
    check(settings.engine, settings.precision)
    if settings.is_model_file:
        return ModelFileMapper(settings, log)
    if settings.engine == "openvino":
        return OpenVINOMapper(settings, log)
    mapper = TensorFlowMapper(keras_model(settings, settings.precision), settings.precision)
    if settings.precision != "float32" and not mapper.on_gpu:
        raise EngineError(f"--precision {settings.precision}: nvidia-smi lists a GPU but "
                          "TensorFlow does not see it; pip install 'tensorflow[and-cuda]'")
    return mapper


def measure_rate(mapper: Mapper, size: int, images: int = 8) -> float:
    """Images/s of `mapper` on one batch of blank images, after an untimed first call
    (which traces the graph or finishes OpenVINO's compilation)."""
    batch = np.zeros((images, size, size, 3), np.float32)
    mapper(batch[:1])
    started = time.perf_counter()
    mapper(batch)
    return images / (time.perf_counter() - started)


def reader_threads(mapper: Mapper, files: list[str], size: int) -> int:
    """Decoding threads for `files` that keep `mapper` busy (reader.balanced_threads)."""
    from extract import reader

    rate = None if mapper.on_gpu else measure_rate(mapper, size)
    return reader.balanced_threads(files, size, rate, mapper.on_gpu)
