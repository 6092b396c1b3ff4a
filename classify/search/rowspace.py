"""Orthonormal bases of the span of training rows: the whole training part's, as a
scikit-learn transformer (RowSpaceBasis), and each fold's (fold_span).

With an L2 penalty a linear model's optimal weights lie in the span of its training
rows (representer theorem; the intercept is not penalised). A fold fitted on its rows'
coordinates Z = X Q in a basis Q of their span reaches the same objective, predictions
and scores as on X (w = Q v, X w = Z v, |w| = |v|), and nothing leaks from validation
rows: they are only mapped in. With fewer rows than features the fits run as wide as
the rows are many. The whole part's basis contains every fold's span, so a fold's
solution maps into it (FoldSpan.duals, in_part) to start the refit.

Q is never formed: from the Gram matrix K = X X^T a pivoted Cholesky factorisation
(LAPACK ?pstrf) gives r pivot rows B that span the rows and the factor L11 with
Q^T = L11^{-1} X[B]; a fold's factorisation is that of K's sub-matrix of its rows. Rows
whose squared distance to the span of the earlier pivots is below n * eps * max |x|^2
(eps of the input's precision) count as dependent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.linalg import lapack, solve_triangular
from sklearn.base import BaseEstimator, TransformerMixin

BLOCK_ROWS = 1024


def _own_mapping(X: np.ndarray) -> np.ndarray:
    """A memory-mapped X mapped afresh (else X itself): the pages read through it leave
    this process's resident memory once it is dropped."""
    if isinstance(X, np.memmap) and X.filename is not None and X.flags.c_contiguous:
        return np.memmap(X.filename, dtype=X.dtype, mode="r", offset=X.offset, shape=X.shape)
    return X


def gram(X: np.ndarray, block_rows: int = BLOCK_ROWS) -> np.ndarray:
    """X X^T in float64 from products of row blocks in X's own precision (two blocks of
    rows in memory at a time; X may be memory-mapped)."""
    X = _own_mapping(X)
    n = X.shape[0]
    K = np.empty((n, n), dtype=np.float64)
    for i in range(0, n, block_rows):
        Xi = np.asarray(X[i : i + block_rows])
        for j in range(0, i + 1, block_rows):
            Xj = Xi if j == i else np.asarray(X[j : j + block_rows])
            block = Xi @ Xj.T
            K[i : i + len(Xi), j : j + len(Xj)] = block
            K[j : j + len(Xj), i : i + len(Xi)] = block.T
    return K


def _pivoted_cholesky(K: np.ndarray, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray, int]:
    """LAPACK ?pstrf of the Gram matrix K, in place: (the lower factor with its upper
    triangle cleared, the 0-based pivots, the rank), rows counted as dependent below
    n * eps(dtype) * max |x|^2."""
    n = K.shape[0]
    tol = n * float(np.finfo(dtype).eps) * float(np.max(np.diag(K)))
    # K is symmetric: its transpose is the same matrix in LAPACK's Fortran order, so
    # the factorisation overwrites K in place instead of copying it.
    c, piv, rank, info = lapack.dpstrf(K.T, lower=1, tol=tol, overwrite_a=True)
    if info < 0:
        raise ValueError(f"dpstrf: illegal argument {-info}")
    for start in range(0, rank, BLOCK_ROWS):  # clear the strict upper triangle
        stop = min(start + BLOCK_ROWS, rank)
        c[:start, start:stop] = 0
        c[start:stop, start:stop] = np.tril(c[start:stop, start:stop])
    return c, piv[:n] - 1, int(rank)  # LAPACK pivots are 1-based


class RowSpaceBasis(TransformerMixin, BaseEstimator):
    """transform(X) = X Q, Q (features x r) an orthonormal basis of the fitted rows' span.

    Holds the fitted rows themselves (no copy; a memory-mapped training part stays
    mapped) and the r x r factor. `fit_transform` returns the training rows' coordinates
    straight from the factorisation; `inverse_transform` maps coordinates (or a linear
    model's weights in them) back to the features.
    """

    def fit(self, X: np.ndarray, y: Any = None) -> RowSpaceBasis:
        self.fit_transform(X)
        return self

    def fit_transform(self, X: np.ndarray, y: Any = None, *,
                      gram_matrix: np.ndarray | None = None) -> np.ndarray:
        """The coordinates of X's rows; `gram_matrix`: X X^T when already computed
        (float64; it is overwritten by the factorisation)."""
        K = gram(X) if gram_matrix is None else gram_matrix
        c, piv, rank = _pivoted_cholesky(K, X.dtype)
        del K
        Z = np.empty((X.shape[0], rank), dtype=X.dtype)
        Z[piv] = c[:, :rank]
        self.pivots_ = piv[:rank]
        # The r x r leading factor; with full rank that is c itself, without a copy.
        self.factor_ = c if rank == X.shape[0] else np.array(c[:rank, :rank])
        del c
        self.rows_ = X
        self.n_features_in_ = X.shape[1]
        self.n_components_ = int(rank)
        return Z

    def _basis_products(self, X: np.ndarray) -> np.ndarray:
        """X[B] X^T for the pivot rows B, reading the fitted rows a block at a time."""
        rows = _own_mapping(self.rows_)
        out = np.empty((len(self.pivots_), X.shape[0]), dtype=np.float64)
        for start in range(0, len(self.pivots_), BLOCK_ROWS):
            block = self.pivots_[start : start + BLOCK_ROWS]
            order = np.argsort(block)  # read in file order, stored in pivot order
            out[start + order] = np.asarray(rows[block[order]]) @ X.T
        return out

    def transform(self, X: np.ndarray) -> np.ndarray:
        products = self._basis_products(np.asarray(X))
        return solve_triangular(self.factor_, products, lower=True).T.astype(X.dtype)

    def inverse_transform(self, Z: np.ndarray) -> np.ndarray:
        """Z Q^T: coordinates (rows of Z) back in the features, block by block."""
        A = solve_triangular(self.factor_, np.asarray(Z, dtype=np.float64).T, lower=True,
                             trans="T")  # r x m: Z Q^T = A^T X[B]
        rows = _own_mapping(self.rows_)
        out = np.zeros((A.shape[1], self.n_features_in_), dtype=np.float64)
        for start in range(0, len(self.pivots_), BLOCK_ROWS):
            block = self.pivots_[start : start + BLOCK_ROWS]
            order = np.argsort(block)
            out += A[start : start + len(block)][order].T @ np.asarray(rows[block[order]])
        return out.astype(self.rows_.dtype)


@dataclass
class FoldSpan:
    """One fold in the span of its own training rows, from the training part's Gram
    matrix: what a RowSpaceBasis fitted on the fold's training rows would give, without
    reading the features again. A fold's L2 fit then runs as wide as its own training
    rows, not the whole part's.

    train: the fold's training rows' coordinates (the rows at `pivots` hold the lower
    triangular factor); test: its validation rows mapped in; pivots: positions, in the
    fold's training rows, of the rows that span it.
    """

    train: np.ndarray
    test: np.ndarray
    pivots: np.ndarray

    def duals(self, coefs: list[np.ndarray]) -> list[np.ndarray]:
        """Linear models' weights in these coordinates (classes x r_fold each) as weights
        on the spanning rows (r_fold x classes): w = sum over those rows of dual[i] x_i.
        Small, so a fold keeps these instead of its coordinates."""
        factor = np.asarray(self.train[self.pivots], dtype=np.float64)  # lower triangular
        return [solve_triangular(factor, np.asarray(coef, dtype=np.float64).T, lower=True,
                                 trans="T") for coef in coefs]


def in_part(dual: np.ndarray, part: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Weights given on training rows (`FoldSpan.duals`; `rows`: their positions in the
    training part) in the whole part's coordinates (`part`: its rows' coordinates):
    classes x r. Since w = X[rows]^T dual, Q^T w = (X[rows] Q)^T dual = part[rows]^T dual."""
    return (np.asarray(part[rows], dtype=np.float64).T @ dual).T


def fold_span(K: np.ndarray, train: np.ndarray, test: np.ndarray, dtype: np.dtype) -> FoldSpan:
    """The fold (`train`, `test`: positions in the training part) in the basis of its
    training rows' span, from K, the training part's Gram matrix (left unchanged)."""
    c, piv, rank = _pivoted_cholesky(K[np.ix_(train, train)], dtype)
    # The folds of a search do this at once, each holding its copy of K's sub-matrix
    # (n_fold^2 float64): the products are solved in place, not copied again.
    products = K[np.ix_(train[piv[:rank]], test)]
    mapped = solve_triangular(c[:rank, :rank], products, lower=True, overwrite_b=True,
                              check_finite=False).T.astype(dtype)
    del products
    coords = np.empty((len(train), rank), dtype=dtype)
    coords[piv] = c[:, :rank]
    return FoldSpan(coords, mapped, piv[:rank])
