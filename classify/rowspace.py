"""L2 logistic regression searched in the row space of the training part.

With an L2 penalty the optimal coefficients lie in the span of the training rows
(representer theorem; the intercept is not penalised). If K = X X^T = Z Z^T with Z of
full column rank r, then Q = X^T Z (Z^T Z)^{-1} has orthonormal columns, X Q = Z, and
fitting the same estimator on Z (n x r) instead of X (n x d) minimises the same
objective: w = Q v, X w = Z v, |w| = |v|. With n < d every fit runs on an n-wide matrix
(VGG16 flatten features of Caltech-101: a fold is 4,338 x 4,338 instead of
4,338 x 25,088). Everything comes from one Gram matrix of the training part: a fold's
training rows give Z by factorisation, its validation rows are mapped in with the same
factor. The refit of the chosen C runs in the row space of the whole training part,
started from the folds' solutions, and is mapped back to an ordinary estimator on the
original features (w = X[B]^T L11^{-T} v), so the saved model and `predict` are as before.

Z comes from a pivoted Cholesky factorisation (LAPACK ?pstrf), which also handles
duplicate or dependent rows: its r pivot rows B span the row space, and any row x maps
to L11^{-1} K[B, x] with L11 the leading r x r factor. Rows whose squared distance to
the span of the earlier pivots is below n * eps * max |x|^2 (eps of the Gram's
precision, as LAPACK's default rule) count as dependent.

Each fold fits its C values as a warm-started path (classify.logreg_path), here in the
fold's row space.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
from scipy.linalg import lapack, solve_triangular
from sklearn.base import clone

from classify import logreg_path

GRAM_BLOCK_ROWS = 1024


def pays(X: np.ndarray) -> bool:
    """True when the training part has fewer rows than features: the row space is then
    narrower than the features (for a C path search, classify.logreg_path.applies)."""
    return X.shape[0] < X.shape[1]


def _own_mapping(X: np.ndarray) -> np.ndarray:
    """A memory-mapped X mapped afresh (else X itself): the pages read through it leave
    this process's resident memory when it is dropped, instead of staying mapped in the
    caller's array until the end of the run."""
    if isinstance(X, np.memmap) and X.filename is not None and X.flags.c_contiguous:
        return np.memmap(X.filename, dtype=X.dtype, mode="r", offset=X.offset, shape=X.shape)
    return X


def gram(X: np.ndarray, block_rows: int = GRAM_BLOCK_ROWS) -> np.ndarray:
    """X X^T in float64, from products of row blocks in X's own precision.

    X may be memory-mapped: only two blocks of rows are in memory at a time, no copy of
    X is made, and the pages read are released afterwards (`_own_mapping`). Float32
    products keep the error near 1e-6 relative, below what the factorisation's pivot
    tolerance discards (see `factor`).
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


def factor(
    K: np.ndarray, eps: float, dtype: np.dtype, overwrite: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pivoted Cholesky of a Gram matrix: (basis, L11, Z) with Z Z^T = K.

    Z (n x r, in `dtype`) has one row per row of K, in K's order. `basis` are the r pivot
    rows (positions in K) and L11 = Z[basis] (float64, lower triangular) maps other rows
    in (`project`). Pivots below n * eps * max(diag K) count as zero: `eps` is the
    precision the Gram was computed in. `overwrite` lets LAPACK factor K in its own
    memory (K is then destroyed).
    """
    n = K.shape[0]
    tol = n * eps * float(np.max(np.diag(K)))
    # K is symmetric: its transpose is the same matrix in the Fortran order LAPACK
    # works in, so `overwrite` really is in place.
    c, piv, rank, info = lapack.dpstrf(K.T, lower=1, tol=tol, overwrite_a=overwrite)
    if info < 0:
        raise ValueError(f"dpstrf: illegal argument {-info}")
    for start in range(0, rank, GRAM_BLOCK_ROWS):  # clear the strict upper triangle
        stop = min(start + GRAM_BLOCK_ROWS, rank)
        c[:start, start:stop] = 0
        c[start:stop, start:stop] = np.tril(c[start:stop, start:stop])
    piv = piv[:n] - 1  # LAPACK pivots are 1-based
    Z = np.empty((n, rank), dtype=dtype)
    Z[piv] = c[:, :rank]
    return piv[:rank], c[:rank, :rank], Z


def project(K_basis_rows: np.ndarray, L11: np.ndarray) -> np.ndarray:
    """Rows x mapped into the row space: L11^{-1} K[B, x], transposed to (rows, r)."""
    return solve_triangular(L11, K_basis_rows, lower=True, check_finite=False).T


@dataclass
class FoldPath:
    """One fold's C path: accuracy on its validation rows, and each solution as
    A = L11^{-T} v on the fold's basis rows (training-part positions `rows`), so that
    w = X[rows]^T A in the original features."""

    scores: dict[float, float]
    rows: np.ndarray
    solutions: dict[float, tuple[np.ndarray, np.ndarray]]  # C -> (A, intercept)


@dataclass
class Searched:
    """What the search leaves for the refit: the Gram matrix of the training part and
    each fold's path."""

    gram: np.ndarray | None
    paths: list[FoldPath]

    def refit(self, estimator: Any, C: float, X: np.ndarray, y: np.ndarray) -> Any:
        """`refit` on the Gram matrix, which it overwrites: this object lets it go."""
        K, self.gram = self.gram, None
        if K is None:
            raise RuntimeError("the row-space search's Gram matrix was used by a refit already")
        return refit(estimator, C, K, X, y, self.paths)


def _fold_path(
    estimator: Any,
    Cs: Sequence[float],
    K: np.ndarray,
    y: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    dtype: np.dtype,
) -> FoldPath:
    """Each C fitted on `train` in the row space of the fold's training rows and scored
    on `test` with estimator.score (accuracy, as GridSearchCV scores it)."""
    eps = float(np.finfo(dtype).eps)
    basis, L11, Z = factor(K[np.ix_(train, train)], eps, dtype, overwrite=True)
    Z_test = project(K[np.ix_(train[basis], test)], L11).astype(dtype)
    scores, solutions = {}, {}
    for model in logreg_path.path(estimator, Cs, Z, y[train]):
        scores[model.C] = float(model.score(Z_test, y[test]))
        A = solve_triangular(L11, model.coef_.T.astype(np.float64), lower=True, trans="T")
        solutions[model.C] = (A, model.intercept_.copy())
    return FoldPath(scores, train[basis], solutions)


def search(
    estimator: Any,
    Cs: Sequence[float],
    K: np.ndarray,
    y: np.ndarray,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    dtype: np.dtype,
    jobs: int,
) -> tuple[np.ndarray, Searched]:
    """Test scores, shape (len(Cs), len(folds)) in the order given, and what the refit
    starts from (K and each fold's path). One thread per fold (logreg_path.per_fold)."""
    paths = logreg_path.per_fold(partial(_fold_path, estimator, Cs, K, y, dtype=dtype),
                                 folds, jobs)  # fmt: skip
    return logreg_path.score_table(paths, Cs), Searched(K, paths)


def refit(
    estimator: Any, C: float, K: np.ndarray, X: np.ndarray, y: np.ndarray,
    paths: Sequence[FoldPath],
) -> Any:  # fmt: skip
    """`estimator` with this C fitted on all of X (K = gram(X), overwritten), returned
    as an ordinary fitted estimator on X's own features.

    The fit runs in the row space of all training rows, warm-started from the mean of
    the folds' solutions at this C (mapped in through K; a start close to the optimum
    instead of the path from the smallest C); its coefficients come back as
    w = X[B]^T L11^{-T} v, reading X a block of rows at a time.
    """
    # X w0 for every training row, w0 the mean of the folds' solutions, before K goes.
    decision = sum(K[:, path.rows] @ path.solutions[C][0] for path in paths) / len(paths)
    intercept = sum(path.solutions[C][1] for path in paths) / len(paths)
    basis, L11, Z = factor(K, float(np.finfo(X.dtype).eps), X.dtype, overwrite=True)
    model = clone(estimator).set_params(C=C, warm_start=True)
    model.coef_ = solve_triangular(L11, decision[basis], lower=True).T.astype(X.dtype)
    model.intercept_ = intercept.astype(X.dtype)
    model.fit(Z, y)
    del Z
    A = solve_triangular(L11, model.coef_.T.astype(np.float64), lower=True, trans="T")
    order = np.argsort(basis)
    rows, A = basis[order], A[order].T.astype(X.dtype)
    coef = np.zeros((A.shape[0], X.shape[1]), dtype=np.float64)
    source = _own_mapping(X)
    for start in range(0, len(rows), GRAM_BLOCK_ROWS):
        block = slice(start, start + GRAM_BLOCK_ROWS)
        coef += A[:, block] @ np.asarray(source[rows[block]])
    del source
    fitted = clone(estimator).set_params(C=C)
    fitted.classes_ = model.classes_
    fitted.coef_ = coef.astype(X.dtype)
    fitted.intercept_ = model.intercept_.copy()
    fitted.n_iter_ = model.n_iter_.copy()
    fitted.n_features_in_ = X.shape[1]
    return fitted
