"""The mapper: preprocessed image batches to feature rows, on one engine.

A mapper is built where it runs (a Dask worker builds its own) from `Settings`, and
holds everything heavy: the model and its compiled forward pass. Freeing the mapper
frees the model. Every engine has the same interface, so the runner, `predict` and
the benchmarks never ask which one they hold.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from extract import backbones
from extract.settings import Settings


class EngineError(Exception):
    """An engine or precision this machine cannot run; the message says what can."""


def resolve_engine(engine: str) -> str:
    """The engine `auto` stands for here (the only engine so far: tensorflow)."""
    return "tensorflow" if engine == "auto" else engine


def check(engine: str, precision: str) -> None:
    """Refuse, in one line, an engine and precision this machine cannot run."""
    if engine != "tensorflow" or precision != "float32":
        raise EngineError(f"--engine {engine} --precision {precision}: not available in "
                          "this version; use --engine tensorflow --precision float32")


class Mapper(Protocol):
    """A callable from a (N, size, size, 3) float32 batch to (N, feature_dim) rows."""

    feature_dim: int

    def __call__(self, images: Any) -> np.ndarray: ...

    def attrs(self) -> dict[str, str]:
        """What the feature file records about how its rows were computed."""
        ...


class TensorFlowMapper:
    """The Keras model as one traced graph: faster than a predict() loop.

    The batch dimension is left open, so the short last batch reuses the same graph
    instead of tracing a second one.
    """

    def __init__(self, model: Any, precision: str = "float32"):
        from extract.pipeline import tf

        self.model = model
        self.precision = precision
        self.feature_dim = int(model.output_shape[-1])
        _, height, width, channels = model.input_shape
        # Traced from a plain function, not a bound method, so the graph holds the
        # model and nothing holds the mapper: dropping the mapper frees both.
        self._forward = tf.function(
            lambda images: model(images, training=False),
            input_signature=[tf.TensorSpec([None, height, width, channels], tf.float32)],
        )

    def __call__(self, images: Any) -> np.ndarray:
        return self._forward(images).numpy()

    def attrs(self) -> dict[str, str]:
        return {"engine": "tensorflow", "precision": self.precision, "device": _tf_device()}


def _tf_device() -> str:
    """The GPU TensorFlow runs on, else this machine's CPU model."""
    from extract.pipeline import tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return str(details.get("device_name", gpus[0].name))
    return cpu_model()


def cpu_model() -> str:
    """The CPU's model name as /proc/cpuinfo gives it (or the platform's word for it)."""
    import platform

    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass  # not Linux: the platform module's answer below
    return platform.processor() or platform.machine()


def build_mapper(settings: Settings) -> Mapper:
    """The mapper `settings` describe (TensorFlow loads here, not before)."""
    model = backbones.build(settings.backbone, weights=settings.weights,
                            pooling=settings.pooling, input_size=settings.input_size)
    return TensorFlowMapper(model, settings.precision)
