"""The Dask logistic regression: each block's gradient is the loss's own."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.parametrize("n_classes", [2, 3])
def test_block_gradient_matches_finite_differences(n_classes: int) -> None:
    from classify.search.dask_logreg import block_loss_grad, n_params

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5))  # float64 here, so the check is exact to rounding
    y = rng.integers(0, n_classes, size=40)
    weight = rng.integers(0, 2, size=40).astype(float)
    theta = rng.normal(size=n_params(5, n_classes))
    _, grad = block_loss_grad(X, y, weight, theta, n_classes)
    step = 1e-6
    numeric = [
        (block_loss_grad(X, y, weight, theta + step * e, n_classes)[0]
         - block_loss_grad(X, y, weight, theta - step * e, n_classes)[0]) / (2 * step)
        for e in np.eye(len(theta))
    ]
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-6)
