"""Compiling an OpenVINO model for this CPU: the one set of settings that both OpenVINO
mappers (a converted built-in backbone, a user's model file) compile with."""

from __future__ import annotations

from typing import Any

OPENVINO_HINTS = {"float32": "f32", "bfloat16": "bf16"}


def compile_for_cpu(core: Any, model: Any, precision: str) -> Any:
    """`model` (an openvino.Model) compiled for the CPU at `precision`."""
    return core.compile_model(model, "CPU", {
        "INFERENCE_PRECISION_HINT": OPENVINO_HINTS[precision],
        # One stream using every core: the best rate for one batch at a time
        # (THROUGHPUT's several streams only pay off with several requests).
        "PERFORMANCE_HINT": "LATENCY",
    })
