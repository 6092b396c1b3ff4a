"""The row space: an orthonormal basis of the rows, and X Xᵀ by blocks."""

from __future__ import annotations

import numpy as np

from classify.search.rowspace import RowSpaceBasis, gram


def test_the_row_space_basis_is_orthonormal_and_spans_the_rows() -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 200))
    X[10] = 2 * X[3]  # a dependent row adds no direction
    basis = RowSpaceBasis()
    Z = basis.fit_transform(X)
    assert Z.shape == (50, 49) and basis.n_components_ == 49
    np.testing.assert_allclose(Z @ Z.T, X @ X.T, atol=1e-9)
    np.testing.assert_allclose(basis.transform(X), Z, atol=1e-9)
    np.testing.assert_allclose(basis.inverse_transform(Z), X, atol=1e-9)
    other = rng.standard_normal((7, 200))
    residual = other - basis.inverse_transform(basis.transform(other))
    np.testing.assert_allclose(X @ residual.T, 0, atol=1e-9)  # what is left is orthogonal


def test_gram_is_X_XT_whatever_the_block_size() -> None:
    X = np.random.default_rng(1).standard_normal((37, 11)).astype(np.float32)
    for block in (1, 5, 64):
        np.testing.assert_allclose(gram(X, block), X.astype(np.float64) @ X.T.astype(np.float64),
                                   atol=1e-5)
