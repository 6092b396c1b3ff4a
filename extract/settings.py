"""What an extraction is asked to do, as typed values (no TensorFlow here).

`Settings` is everything that decides the rows: equal settings on an equal folder give
equal rows, so its `identity` names the feature file. `RunOptions` only decide how
the work is done (batching, sharding, compression), never what the rows hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath
from typing import TYPE_CHECKING

from common.errors import UserError

if TYPE_CHECKING:  # an annotation only: the record's module brings h5py
    from extract.featurefile import Extractor

ENGINES = ("auto", "tensorflow", "openvino")
PRECISIONS = ("float32", "bfloat16", "float16")
# A --backbone ending so is the user's own model file (ONNX, or OpenVINO's .xml + .bin).
MODEL_FILE_SUFFIXES = (".onnx", ".xml")


def is_model_file(backbone: str) -> bool:
    """Whether `backbone` names a model file rather than a built-in backbone."""
    return backbone.lower().endswith(MODEL_FILE_SUFFIXES)


@dataclass(frozen=True)
class Settings:
    """The extractor: backbone, weights, pooling, input size, storage dtype, and the
    engine and precision that run it (engine is resolved: never "auto" here)."""

    backbone: str  # a built-in backbone's name, or a model file's absolute path
    weights: str  # imagenet, random, a path to a weights file; a model file's sha256:...
    pooling: str
    input_size: int
    dtype: str = "float32"
    engine: str = "tensorflow"
    precision: str = "float32"
    # A model file's own: its input scaling (extract.backbones.preprocessing) and the
    # output its features come from. None for a built-in backbone.
    preprocessing: str | None = None
    model_output: str | None = None

    @property
    def is_model_file(self) -> bool:
        return is_model_file(self.backbone)

    @property
    def name(self) -> str:
        """What names the extractor (in file names, `backbone` attributes, progress):
        the backbone, or the model file's stem."""
        return PurePath(self.backbone).stem if self.is_model_file else self.backbone

    @classmethod
    def from_extractor(cls, extractor: Extractor, *, weights: str | None = None,
                       engine: str | None = None, precision: str | None = None,
                       model_file: str | None = None) -> Settings:
        """The settings that compute the rows `extractor` records (a file's, or a model
        bundle's copy), by name.

        `weights` replaces the record's weights identity (a weights file's path for its
        sha256); `engine` and `precision` replace the record's where this machine runs
        others; `model_file` the path a model file was recorded at. A record from before
        engines existed ran on TensorFlow at float32.
        """
        ran = extractor.with_legacy_defaults()
        if ran.model_file is not None:  # the mapper checks the file's sha256 is the record's
            return cls(model_file or ran.model_file, str(ran.weights), str(ran.pooling),
                       int(ran.input_size), dtype=ran.dtype or "float32", engine="openvino",
                       precision=precision or ran.precision,
                       preprocessing=ran.preprocessing, model_output=ran.model_output)
        named = {"backbone": ran.backbone, "weights": weights or ran.weights,
                 "pooling": ran.pooling, "input_size": ran.input_size}
        missing = [name for name, value in named.items() if value is None]
        if missing:
            raise UserError(f"the extractor record names no {', '.join(missing)}, so its "
                            "features cannot be computed again")
        return cls(**{**named, "input_size": int(ran.input_size)},
                   dtype=ran.dtype or "float32", engine=engine or ran.engine,
                   precision=precision or ran.precision)


@dataclass(frozen=True)
class RunOptions:
    """How an extraction runs; none of these change a single feature value."""

    batch_size: int = 32
    buffer_size: int = 1000
    shard_size: int | None = None  # None: the engine's default
    compression: str | None = None
    force: bool = False
