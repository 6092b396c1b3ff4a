"""Feature standardisation that fits in the memory budget of wide float32 matrices."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.preprocessing import StandardScaler

FIT_BLOCK_ROWS = 512


class BlockwiseStandardScaler(StandardScaler):
    """StandardScaler fitted block by block with `partial_fit`: the same statistics,
    without the float64 temporary as large as the whole matrix that `fit` allocates
    (2.25 x the size of float32 input; 1.3 GB per fold for VGG16 flatten features)."""

    def fit(
        self, X: np.ndarray, y: Any = None, sample_weight: Any = None
    ) -> BlockwiseStandardScaler:
        self._reset()
        for start in range(0, X.shape[0], FIT_BLOCK_ROWS):
            block = slice(start, start + FIT_BLOCK_ROWS)
            self.partial_fit(
                X[block], sample_weight=None if sample_weight is None else sample_weight[block]
            )
        return self
