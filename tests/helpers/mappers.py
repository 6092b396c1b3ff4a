"""A stand-in mapper for tests of what surrounds the forward pass (shards, parts,
progress)."""

from __future__ import annotations

import numpy as np


class ZeroMapper:
    """A mapper without a model: zero rows of `feature_dim`, and no rate to measure (as
    on a GPU)."""

    on_gpu = True

    def __init__(self, feature_dim: int = 4) -> None:
        self.feature_dim = feature_dim

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return np.zeros((len(images), self.feature_dim), np.float32)

    def attrs(self) -> dict[str, str]:
        return {"engine": "tensorflow", "precision": "float32", "device": "none"}
