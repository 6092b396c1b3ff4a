"""The C search of an L2 logistic regression as one warm-started path per fold.

Each fold fits the C values in ascending order, each fit started from the previous
solution (what LogisticRegressionCV does), and is scored as GridSearchCV scores it
(accuracy on the fold's validation rows). The refit of the chosen C starts from the
mean of the folds' solutions at that C. Only the starting points change: objective,
folds, solver and stopping rule are scikit-learn's.

The start matters more than speed: newton-cg stops once the largest gradient component
is below tol, and from a cold start at large C a problem that is nearly separable
meets that after one Newton step far from the optimum (its score is then that of an
accidentally regularised model, and can win the search). Along the path each fit
arrives from a solution that was itself converged.

Features narrower than the training part are fitted as they are (`search`); wider ones
are first mapped into the row space of the training part (classify.rowspace), which
uses the same path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import numpy as np
from sklearn.base import clone

T = TypeVar("T")
# Parameter values that mean "L2 penalty" for LogisticRegression (penalty is deprecated
# in recent scikit-learn in favour of l1_ratio).
L2_PENALTIES = ("l2", "deprecated")
WARM_START_SOLVERS = ("newton-cg", "lbfgs", "sag", "saga", "newton-cholesky")


def applies(estimator: Any, grid: Mapping[str, Sequence[Any]], scale: bool) -> bool:
    """True for an L2 LogisticRegression searched over C alone (positive, finite values)
    without a per-fold scaler (which would change the features from fold to fold)."""
    from sklearn.linear_model import LogisticRegression

    if scale or set(grid) != {"C"} or not isinstance(estimator, LogisticRegression):
        return False
    params = estimator.get_params()
    return (
        params["penalty"] in L2_PENALTIES
        and params["l1_ratio"] in (None, 0, 0.0)
        and params["solver"] in WARM_START_SOLVERS
        and all(isinstance(c, (int, float)) and not isinstance(c, bool) and 0 < c < np.inf
                for c in grid["C"])
    )  # fmt: skip


def path(estimator: Any, Cs: Sequence[float], X: np.ndarray, y: np.ndarray) -> Iterator[Any]:
    """The estimator fitted for each C in ascending order, each fit warm-started."""
    model = clone(estimator).set_params(warm_start=True)
    for C in sorted(Cs):
        yield model.set_params(C=C).fit(X, y)


def per_fold(
    task: Callable[[np.ndarray, np.ndarray], T],
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    jobs: int,
) -> list[T]:
    """`task(train, test)` for every fold, one thread per fold.

    The fits spend their time in BLAS and scikit-learn's compiled loss code, both
    outside the GIL, and threads share the caller's arrays without copies to other
    processes; BLAS gets the cores divided among the folds. jobs=-1 gives every fold
    its own thread even on fewer cores: they share the cores rather than leave one
    idle while the last fold runs alone.
    """
    from joblib import Parallel, cpu_count, delayed, effective_n_jobs
    from threadpoolctl import threadpool_limits

    workers = len(folds) if jobs == -1 else min(effective_n_jobs(jobs), len(folds))
    if workers == 1:
        return [task(train, test) for train, test in folds]
    with threadpool_limits(max(1, cpu_count() // workers)):
        return Parallel(n_jobs=workers, backend="threading")(
            delayed(task)(train, test) for train, test in folds
        )


@dataclass
class FoldPath:
    """One fold's C path: accuracy on its validation rows and each solution."""

    scores: dict[float, float]
    solutions: dict[float, tuple[np.ndarray, np.ndarray]]  # C -> (coef, intercept)


def _fold_path(
    estimator: Any, Cs: Sequence[float], X: np.ndarray, y: np.ndarray,
    train: np.ndarray, test: np.ndarray,
) -> FoldPath:  # fmt: skip
    X_train, X_test = np.asarray(X[train]), np.asarray(X[test])
    scores, solutions = {}, {}
    for model in path(estimator, Cs, X_train, y[train]):
        scores[model.C] = float(model.score(X_test, y[test]))
        solutions[model.C] = (model.coef_.copy(), model.intercept_.copy())
    return FoldPath(scores, solutions)


@dataclass
class Searched:
    """What the search leaves for the refit: each fold's path."""

    paths: list[FoldPath]

    def refit(self, estimator: Any, C: float, X: np.ndarray, y: np.ndarray) -> Any:
        """`estimator` with this C fitted on all of X, started from the mean of the
        folds' solutions at this C, returned as an ordinary (not warm-starting) fit."""
        model = clone(estimator).set_params(C=C, warm_start=True)
        coefs, intercepts = zip(*(p.solutions[C] for p in self.paths))
        model.coef_ = np.mean(coefs, axis=0).astype(X.dtype)
        model.intercept_ = np.mean(intercepts, axis=0).astype(X.dtype)
        model.fit(X, y)
        return model.set_params(warm_start=estimator.warm_start)


def search(
    estimator: Any,
    Cs: Sequence[float],
    X: np.ndarray,
    y: np.ndarray,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    jobs: int,
) -> tuple[np.ndarray, Searched]:
    """Test scores, shape (len(Cs), len(folds)) in the order given, and the paths."""
    paths = per_fold(partial(_fold_path, estimator, Cs, X, y), folds, jobs)
    return score_table(paths, Cs), Searched(paths)


def score_table(paths: Sequence[Any], Cs: Sequence[float]) -> np.ndarray:
    """Each fold path's validation scores as a (len(Cs), folds) array, Cs in the
    order given (the order of the candidates)."""
    return np.array([[p.scores[C] for p in paths] for C in Cs])
