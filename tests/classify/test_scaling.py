"""The block-wise scaler: scikit-learn's statistics without a whole-matrix float64 copy."""

from __future__ import annotations

import tracemalloc

import numpy as np
from sklearn.preprocessing import StandardScaler

from classify.scaling import BlockwiseStandardScaler


def _features() -> np.ndarray:
    rng = np.random.default_rng(0)
    return (rng.standard_normal((8000, 1000), dtype=np.float32) * 3 + 1).astype(np.float32)


def test_same_statistics_and_output_as_standard_scaler() -> None:
    X = _features()
    blockwise, reference = BlockwiseStandardScaler().fit(X), StandardScaler().fit(X)
    np.testing.assert_allclose(blockwise.mean_, reference.mean_, rtol=1e-6)
    np.testing.assert_allclose(blockwise.scale_, reference.scale_, rtol=1e-6)
    scaled = blockwise.transform(X)
    assert scaled.dtype == np.float32
    np.testing.assert_allclose(scaled, reference.transform(X), atol=1e-5)


def test_refitting_forgets_the_previous_data() -> None:
    X = _features()
    scaler = BlockwiseStandardScaler().fit(X)
    scaler.fit(X[:100])
    assert scaler.n_samples_seen_ == 100
    np.testing.assert_allclose(scaler.mean_, X[:100].mean(axis=0, dtype=np.float64), rtol=1e-5)


def test_fit_allocates_far_less_than_the_input() -> None:
    X = _features()
    tracemalloc.start()
    try:
        BlockwiseStandardScaler().fit(X)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 0.5 * X.nbytes  # StandardScaler.fit peaks at about 2.25 x X.nbytes
