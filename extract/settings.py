"""What an extraction is asked to do, as typed values (no TensorFlow here).

`Settings` is everything that decides the rows: equal settings on an equal folder give
equal rows, so its `identity` names the feature file. `RunOptions` only decide how
the work is done (batching, sharding, compression), never what the rows hold.
"""

from __future__ import annotations

from dataclasses import dataclass

ENGINES = ("auto", "tensorflow", "openvino")
PRECISIONS = ("float32", "bfloat16", "float16")


@dataclass(frozen=True)
class Settings:
    """The extractor: backbone, weights, pooling, input size, storage dtype, and the
    engine and precision that run it (engine is resolved: never "auto" here)."""

    backbone: str
    weights: str  # imagenet, random, or a path to a weights file
    pooling: str
    input_size: int
    dtype: str = "float32"
    engine: str = "tensorflow"
    precision: str = "float32"


@dataclass(frozen=True)
class RunOptions:
    """How an extraction runs; none of these change a single feature value."""

    batch_size: int = 32
    buffer_size: int = 1000
    shard_size: int | None = None  # None: the engine's default
    compression: str | None = None
    force: bool = False
