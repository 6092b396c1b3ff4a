"""An orthonormal basis of the span of the training rows, as a scikit-learn transformer.

With an L2 penalty a linear model's optimal weights lie in the span of its training
rows (representer theorem; the intercept is not penalised). Fitted on the whole
training part, this basis contains the span of every fold's training rows too, so a
fold fitted on the projected rows Z = X Q reaches the same objective, predictions and
scores as on X (w = Q v, X w = Z v, |w| = |v|), and nothing leaks from validation rows:
they are only mapped in. With fewer rows than features the fits run n_train wide.

Q is never formed: from the Gram matrix K = X X^T a pivoted Cholesky factorisation
(LAPACK ?pstrf) gives r pivot rows B that span the rows and the factor L11 with
Q^T = L11^{-1} X[B]. Rows whose squared distance to the span of the earlier pivots is
below n * eps * max |x|^2 (eps of the input's precision) count as dependent.
"""

from __future__ import annotations

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
    """X X^T in float64 from products of row blocks in X's own precision.

    Two blocks of rows are in memory at a time, so X may be memory-mapped.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The rows.
    block_rows : int
        Rows per block.

    Returns
    -------
    ndarray of shape (n_samples, n_samples)
        The Gram matrix, in float64.
    """
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


class RowSpaceBasis(TransformerMixin, BaseEstimator):
    """transform(X) = X Q, Q (features x r) an orthonormal basis of the fitted rows' span.

    Holds the fitted rows themselves (no copy; a memory-mapped training part stays
    mapped) and the r x r factor. `fit_transform` returns the training rows' coordinates
    straight from the factorisation; `inverse_transform` maps coordinates (or a linear
    model's weights in them) back to the features.
    """

    def fit(self, X: np.ndarray, y: Any = None) -> RowSpaceBasis:
        """Fit the basis of X's rows.

        Parameters
        ----------
        X, y
            As for `fit_transform`.

        Returns
        -------
        RowSpaceBasis
            This basis, fitted.
        """
        self.fit_transform(X)
        return self

    def fit_transform(self, X: np.ndarray, y: Any = None) -> np.ndarray:
        """Fit the basis of X's rows and return their coordinates in it.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            The rows; held, not copied.
        y : None
            Ignored.

        Returns
        -------
        ndarray of shape (n_samples, n_components_)
            The rows' coordinates, in X's precision.
        """
        n = X.shape[0]
        K = gram(X)
        tol = n * float(np.finfo(X.dtype).eps) * float(np.max(np.diag(K)))
        # K is symmetric: its transpose is the same matrix in LAPACK's Fortran order, so
        # the factorisation overwrites K in place instead of copying it.
        c, piv, rank, info = lapack.dpstrf(K.T, lower=1, tol=tol, overwrite_a=True)
        if info < 0:
            raise ValueError(f"dpstrf: illegal argument {-info}")
        del K
        for start in range(0, rank, BLOCK_ROWS):  # clear the strict upper triangle
            stop = min(start + BLOCK_ROWS, rank)
            c[:start, start:stop] = 0
            c[start:stop, start:stop] = np.tril(c[start:stop, start:stop])
        piv = piv[:n] - 1  # LAPACK pivots are 1-based
        Z = np.empty((n, rank), dtype=X.dtype)
        Z[piv] = c[:, :rank]
        self.pivots_ = piv[:rank]
        # The r x r leading factor; with full rank that is c itself, without a copy.
        self.factor_ = c if rank == n else np.array(c[:rank, :rank])
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
        """Map rows into the basis: X Q.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            Rows with the fitted rows' features.

        Returns
        -------
        ndarray of shape (n_samples, n_components_)
            Their coordinates, in X's precision.
        """
        products = self._basis_products(np.asarray(X))
        return solve_triangular(self.factor_, products, lower=True).T.astype(X.dtype)

    def inverse_transform(self, Z: np.ndarray) -> np.ndarray:
        """Z Q^T: coordinates back in the features, block by block.

        Parameters
        ----------
        Z : ndarray of shape (n_samples, n_components_)
            Coordinates, or a linear model's weights in them (one row per class).

        Returns
        -------
        ndarray of shape (n_samples, n_features)
            The same in the features, in the fitted rows' precision.
        """
        A = solve_triangular(self.factor_, np.asarray(Z, dtype=np.float64).T, lower=True,
                             trans="T")  # r x m: Z Q^T = A^T X[B]
        rows = _own_mapping(self.rows_)
        out = np.zeros((A.shape[1], self.n_features_in_), dtype=np.float64)
        for start in range(0, len(self.pivots_), BLOCK_ROWS):
            block = self.pivots_[start : start + BLOCK_ROWS]
            order = np.argsort(block)
            weights = A[start : start + len(block)][order].T.astype(rows.dtype)
            out += weights @ np.asarray(rows[block[order]])  # in the rows' precision
        return out.astype(self.rows_.dtype)
