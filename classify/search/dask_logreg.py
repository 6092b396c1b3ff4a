"""Multinomial L2 logistic regression fitted out of core on a Dask cluster.

The objective is scikit-learn's LogisticRegression(C): the sum of the per-sample
log-losses plus ||W||^2 / (2C), intercept unpenalised (two classes: the binomial
form with one weight vector, as scikit-learn fits it). L-BFGS-B runs in the client;
each loss-and-gradient evaluation is one task per row block on the workers, which
return partial sums. The client only ever holds coefficient-sized arrays, so the
matrix may be larger than any one machine's memory as long as the cluster's is not.

The blocks are futures of data already persisted on the workers; rows outside the
fold being fitted get weight 0, so one persisted copy serves every fold.

L-BFGS runs on centred rows (the weighted rows' mean subtracted) as a change of
variables: the intercept it sees is the one of the centred rows, and every theta in
or out of `fit` is for the rows as they are. The problem is the same (the intercept is
unpenalised); non-negative features share a large mean direction that the intercept
otherwise has to cancel, which takes the optimiser more iterations.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import dask.array as da
    from distributed import Client, Future

# L-BFGS settings as scikit-learn's lbfgs solver uses them, with more iterations: the
# local model is newton-cg, which needs far fewer (but costlier) steps to converge.
MAX_ITER = 500
TOL = 1e-4
MAX_LINE_SEARCH = 50


def weight_rows(n_classes: int) -> int:
    """Rows of W: one per class, or one for two classes (class 0's logit is pinned to 0).

    Parameters
    ----------
    n_classes : int
        K.

    Returns
    -------
    int
        K, or 1 for K = 2.
    """
    return 1 if n_classes == 2 else n_classes


def _logits(X: np.ndarray, theta: np.ndarray, n_classes: int) -> np.ndarray:
    """Per-row logits of every class, in float64 (the product itself in X's float32)."""
    k, d = weight_rows(n_classes), X.shape[1]
    W = theta[: k * d].reshape(k, d).astype(X.dtype, copy=False)
    Z = (X @ W.T).astype(np.float64) + theta[k * d :]
    if n_classes == 2:
        Z = np.hstack([np.zeros((len(Z), 1)), Z])
    return Z


def block_loss_grad(
    X: np.ndarray, y: np.ndarray, weight: np.ndarray, theta: np.ndarray, n_classes: int
) -> tuple[float, np.ndarray]:
    """Weighted sum of the log-losses of one row block and its gradient (runs on a worker).

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
        The block's rows.
    y : ndarray of shape (n_rows,)
        Their class numbers 0..K-1.
    weight : ndarray of shape (n_rows,)
        Each row's weight (0: outside the fold).
    theta : ndarray
        Flat coefficients: W (weight_rows x n_features), then the intercepts.
    n_classes : int
        K.

    Returns
    -------
    loss : float
        The weighted sum of the rows' log-losses.
    grad : ndarray
        Its gradient with respect to theta.
    """
    k, d = weight_rows(n_classes), X.shape[1]
    Z = _logits(X, theta, n_classes)
    Z -= Z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(Z).sum(axis=1))
    rows = np.arange(len(y))
    loss = float(weight @ (log_norm - Z[rows, y]))
    R = np.exp(Z - log_norm[:, None])  # probabilities, then the residual P - onehot(y)
    R[rows, y] -= 1.0
    R *= weight[:, None]
    if n_classes == 2:
        R = R[:, 1:]
    grad = np.empty(k * d + k)
    grad[: k * d] = (R.T.astype(X.dtype) @ X).ravel()
    grad[k * d :] = R.sum(axis=0)
    return loss, grad


def block_row_sum(X: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """The weighted sum of one block's rows (runs on a worker).

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
        The block's rows.
    weight : ndarray of shape (n_rows,)
        Each row's weight.

    Returns
    -------
    ndarray of shape (n_features,)
        The sum, in X's precision.
    """
    return weight.astype(X.dtype) @ X


def block_probabilities(
    X: np.ndarray, y: np.ndarray, weight: np.ndarray, theta: np.ndarray, n_classes: int
) -> np.ndarray:
    """Class probabilities of the rows of one block that have a weight (runs on a worker).

    Parameters
    ----------
    X, y, weight, theta, n_classes
        As for `block_loss_grad` (y is not read).

    Returns
    -------
    ndarray of shape (n_weighted_rows, n_classes)
        The probabilities, in row order.
    """
    Z = _logits(X[weight > 0], theta, n_classes)
    Z -= Z.max(axis=1, keepdims=True)
    P = np.exp(Z)
    return P / P.sum(axis=1, keepdims=True)


def block_futures(array: da.Array) -> list[Future]:
    """The futures of a persisted array's row blocks.

    Parameters
    ----------
    array : dask.array.Array
        A persisted array with one column chunk.

    Returns
    -------
    list of distributed.Future
        Its row blocks, in row order.
    """
    from dask.core import flatten
    from distributed import futures_of

    by_key = {future.key: future for future in futures_of(array)}
    return [by_key[key] for key in flatten(array.__dask_keys__())]


@dataclass
class Blocks:
    """Row blocks persisted on the workers: features, encoded labels, in row order."""

    client: Client
    X: list[Future]
    y: list[Future]
    sizes: list[int]  # rows per block
    n_features: int
    n_classes: int

    @classmethod
    def of(cls, client: Client, X: da.Array, y: np.ndarray, n_classes: int) -> Blocks:
        """The row blocks of X and the labels y scattered alongside them.

        Parameters
        ----------
        client : distributed.Client
            The cluster's client.
        X : dask.array.Array of shape (n_samples, n_features)
            Persisted, with one column chunk.
        y : ndarray of shape (n_samples,)
            The class numbers 0..K-1.
        n_classes : int
            K.

        Returns
        -------
        Blocks
            The blocks, in row order.
        """
        sizes = list(X.chunks[0])
        labels = client.scatter(np.split(np.asarray(y), np.cumsum(sizes)[:-1]), hash=False)
        return cls(client, block_futures(X), labels, sizes, X.shape[1], n_classes)

    def split_weights(self, rows: np.ndarray) -> list[Future]:
        """Per-block 0/1 weights selecting `rows`, on the workers.

        Parameters
        ----------
        rows : ndarray of int
            Positions in the blocks' order.

        Returns
        -------
        list of distributed.Future
            One weight vector per block.
        """
        weight = np.zeros(sum(self.sizes))
        weight[rows] = 1.0
        parts = np.split(weight, np.cumsum(self.sizes)[:-1])
        return self.client.scatter(parts, hash=False)  # unique keys: folds run in threads

    def map_blocks(self, func: Any, weights: list[Future], theta: np.ndarray) -> list[Any]:
        """`func(X, y, weight, theta, n_classes=...)` on every block where it lives.

        Parameters
        ----------
        func : callable
            A block function (`block_loss_grad`, `block_probabilities`).
        weights : list of distributed.Future
            Per-block weights (`split_weights`).
        theta : ndarray
            Flat coefficients, broadcast to the workers.

        Returns
        -------
        list
            The blocks' results, in row order.
        """
        shared = self.client.scatter(theta, broadcast=True, hash=False)
        futures = self.client.map(
            func, self.X, self.y, weights, [shared] * len(self.X),
            n_classes=self.n_classes, pure=False,
        )
        return self.client.gather(futures)

    def mean(self, weights: list[Future], n_rows: int) -> np.ndarray:
        """The mean of the weighted rows.

        Parameters
        ----------
        weights : list of distributed.Future
            Per-block weights (`split_weights`).
        n_rows : int
            How many rows have weight 1.

        Returns
        -------
        ndarray of shape (n_features,)
            The mean, in float64.
        """
        sums = self.client.gather(self.client.map(block_row_sum, self.X, weights, pure=False))
        return np.sum(sums, axis=0, dtype=np.float64) / n_rows


@dataclass
class FitResult:
    """Coefficients, flat as the optimiser sees them, and how the optimiser ended."""

    theta: np.ndarray
    n_iter: int
    converged: bool
    message: str


def n_params(n_features: int, n_classes: int) -> int:
    """The length of theta.

    Parameters
    ----------
    n_features : int
        The rows' width.
    n_classes : int
        K.

    Returns
    -------
    int
        weight_rows(K) x (n_features + 1): the weights, then the intercepts.
    """
    k = weight_rows(n_classes)
    return k * n_features + k


def fit(
    blocks: Blocks,
    weights: list[Future],
    n_rows: int,
    C: float,
    theta0: np.ndarray | None = None,
    *,
    max_iter: int = MAX_ITER,
    tol: float = TOL,
) -> FitResult:
    """Minimise (sum of log-losses + ||W||^2 / (2C)) / n_rows over the weighted rows.

    Dividing by n_rows changes no minimiser; it keeps `tol` meaningful across sizes
    (scikit-learn's lbfgs scales the same way).

    Parameters
    ----------
    blocks : Blocks
        The rows, on the workers.
    weights : list of distributed.Future
        Per-block weights selecting the rows fitted (`Blocks.split_weights`).
    n_rows : int
        How many rows have weight 1.
    C : float
        The inverse regularisation strength.
    theta0 : ndarray or None
        Where L-BFGS-B starts, for the rows as they are (None: zeros).
    max_iter, tol : int, float
        L-BFGS-B's iteration limit and gradient tolerance.

    Returns
    -------
    FitResult
        The solution and how the optimiser ended.
    """
    from scipy.optimize import minimize

    k, d = weight_rows(blocks.n_classes), blocks.n_features
    mean = blocks.mean(weights, n_rows)

    def shift(theta: np.ndarray, sign: float) -> np.ndarray:
        """theta with its intercept moved by sign x (the mean's logits): +1 from the rows
        as they are to the centred rows, -1 back."""
        moved = theta.copy()
        moved[k * d :] += sign * (theta[: k * d].reshape(k, d) @ mean)
        return moved

    def objective(centred: np.ndarray) -> tuple[float, np.ndarray]:
        theta = shift(centred, -1.0)
        parts = blocks.map_blocks(block_loss_grad, weights, theta)
        loss = sum(part[0] for part in parts)
        grad = np.sum([part[1] for part in parts], axis=0)
        # The chain rule through the shift: d/dW picks up -mean x d/d(intercept).
        grad[: k * d] -= np.outer(grad[k * d :], mean).ravel()
        W = theta[: k * d]
        loss += float(W @ W) / (2.0 * C)
        grad[: k * d] += W / C
        return loss / n_rows, grad / n_rows

    start = np.zeros(n_params(d, blocks.n_classes)) if theta0 is None else theta0
    result = minimize(
        objective, shift(start, 1.0), method="L-BFGS-B", jac=True,
        options={"maxiter": max_iter, "maxls": MAX_LINE_SEARCH, "gtol": tol,
                 "ftol": 64 * np.finfo(float).eps},
    )
    return FitResult(shift(result.x, -1.0), int(result.nit), bool(result.success),
                     str(result.message))


def probabilities(blocks: Blocks, weights: list[Future], theta: np.ndarray) -> np.ndarray:
    """Class probabilities of the weighted rows.

    Parameters
    ----------
    blocks : Blocks
        The rows, on the workers.
    weights : list of distributed.Future
        Per-block weights selecting the rows (`Blocks.split_weights`).
    theta : ndarray
        Flat coefficients.

    Returns
    -------
    ndarray of shape (n_weighted_rows, n_classes)
        The probabilities, in row order.
    """
    return np.concatenate(blocks.map_blocks(block_probabilities, weights, theta))


@dataclass
class PathPoint:
    """One C of a fold's regularisation path: its validation scores, the solution, and
    the seconds spent fitting and scoring it."""

    scores: dict[str, float]
    theta: np.ndarray
    fit_seconds: float
    score_seconds: float


def fit_path(
    blocks: Blocks,
    train_rows: np.ndarray,
    val_rows: np.ndarray,
    Cs: Sequence[float],
    score: Callable[[np.ndarray], dict[str, float]],
    on_point: Callable[[], object] = lambda: None,
) -> dict[float, PathPoint]:
    """Each C fitted on `train_rows`, smallest C first, and scored by `score` on the
    validation rows' probabilities (in row order); `on_point` after each.

    Each fit starts from the previous one's solution (a regularisation path):
    weaker regularisation moves the optimum little, so it takes few iterations.

    Parameters
    ----------
    blocks : Blocks
        The rows, on the workers.
    train_rows, val_rows : ndarray of int
        The fold's training and validation rows.
    Cs : sequence of float
        The C values (each distinct one is fitted once).
    score : callable
        Validation probabilities -> metric -> score.
    on_point : callable
        Called after each C.

    Returns
    -------
    dict of float to PathPoint
        Each C's point.
    """
    train_w, val_w = blocks.split_weights(train_rows), blocks.split_weights(val_rows)
    path: dict[float, PathPoint] = {}
    theta = None
    for C in sorted(set(Cs)):
        started = time.perf_counter()
        theta = fit(blocks, train_w, len(train_rows), C, theta).theta
        fitted = time.perf_counter()
        scores = score(probabilities(blocks, val_w, theta))
        path[C] = PathPoint(scores, theta, fitted - started, time.perf_counter() - fitted)
        on_point()
    return path


def to_sklearn(template: Any, theta: np.ndarray, n_features: int, n_classes: int,
               n_iter: int) -> Any:
    """An ordinary fitted LogisticRegression holding `theta`: predict_proba, predict and
    saving work as for one fitted locally. `template` carries the parameters (C, ...).

    The fitted attributes are set here because scikit-learn has no public way to make
    a fitted LogisticRegression from coefficients, and the rows are on the workers, so
    fit cannot run here. A warm-started fit on a few rows with max_iter=0 keeps the
    coefficients (newton-cg only), but it too needs coef_ set by hand first, warns that
    it did not converge and records n_iter_ = 0: the same hand-setting plus a fake fit.
    The attributes set are the documented ones predict_proba and skops read.

    Parameters
    ----------
    template : LogisticRegression
        The model's parameters.
    theta : ndarray
        Flat coefficients, for the rows as they are.
    n_features, n_classes : int
        The rows' width and K.
    n_iter : int
        The optimiser's iterations, recorded as `n_iter_`.

    Returns
    -------
    LogisticRegression
        The fitted model.
    """
    from sklearn.base import clone

    k = weight_rows(n_classes)
    # lbfgs is the solver scikit-learn would use for this objective; the parameters then
    # say how the coefficients were found.
    estimator = clone(template).set_params(solver="lbfgs", max_iter=MAX_ITER, tol=TOL)
    estimator.coef_ = theta[: k * n_features].reshape(k, n_features)
    estimator.intercept_ = theta[k * n_features :].copy()
    estimator.classes_ = np.arange(n_classes)
    estimator.n_features_in_ = n_features
    estimator.n_iter_ = np.array([n_iter], dtype=np.int32)
    return estimator
