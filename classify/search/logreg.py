"""The C search of an L2 LogisticRegression: GridSearchCV's answer, fitted as C paths.

Each fold fits the C values from small to large, each fit warm-started from the
previous solution (scikit-learn's `warm_start`, what LogisticRegressionCV does along
its path), one thread per fold; the refit of the chosen C starts from the folds' mean
solution. Objective, folds, solver and stopping rule stay scikit-learn's; only the
starting points change. The start matters for the answer too: newton-cg stops once the
largest gradient component is below tol, and from a cold start at large C a nearly
separable problem meets that after one Newton step far from the optimum.

Every fit runs on centred rows (each fold's, and the refit's, own training mean
subtracted). With an unpenalised intercept that is the same problem, exactly: the
weights are unchanged and the intercept moves by the mean's logits. Features that are
all non-negative (ReLU outputs) share a large mean direction, which the intercept
then no longer has to cancel, and newton-cg needs fewer iterations. Solutions are kept
and handed on with the intercept of the uncentred rows.

With fewer training rows than features the fits run on the training part's row-space
coordinates (RowSpaceBasis, fitted once on the whole training part), n_train wide; the
refit's solution is then mapped back to the features and the final LogisticRegression
is fitted on them from there, so `best_estimator_` is an ordinary model on the
original features.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass
from functools import partial
from typing import Any, TypeVar

import numpy as np
from sklearn.base import clone
from threadpoolctl import threadpool_limits

from classify.search.base import Evaluation, Folds, Search, path_evaluation
from classify.search.results import LOG_LOSS, SCORE
from classify.search.rowspace import RowSpaceBasis

T = TypeVar("T")
# Values that mean "L2 penalty" (penalty is deprecated in recent scikit-learn).
L2_PENALTIES = ("l2", "deprecated")
WARM_START_SOLVERS = ("newton-cg", "lbfgs", "sag", "saga", "newton-cholesky")


def applies(estimator: Any, grid: Mapping[str, Sequence[Any]]) -> bool:
    """Whether the path search answers for `estimator` over `grid`.

    Parameters
    ----------
    estimator : estimator
        The model searched.
    grid : mapping of str to sequence
        The searched parameters' values.

    Returns
    -------
    bool
        True for an L2 LogisticRegression with a warm-starting solver, searched over C
        alone at positive, finite values.
    """
    from sklearn.linear_model import LogisticRegression

    if set(grid) != {"C"} or not isinstance(estimator, LogisticRegression):
        return False
    params = estimator.get_params()
    return (
        params["penalty"] in L2_PENALTIES
        and params["l1_ratio"] in (None, 0, 0.0)
        and params["solver"] in WARM_START_SOLVERS
        and all(isinstance(c, (int, float)) and not isinstance(c, bool) and 0 < c < np.inf
                for c in grid["C"])
    )


def per_fold(
    task: Callable[[np.ndarray, np.ndarray], T],
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    jobs: int | None,
) -> list[T]:
    """`task(train, test)` for every fold, one thread per fold.

    The fits spend their time in BLAS and compiled loss code, outside the GIL; threads
    share the caller's arrays without copies, and BLAS gets the cores divided among the
    folds.

    Parameters
    ----------
    task : callable
        Called with a fold's training and validation indices.
    folds : sequence of (train, test) index arrays
        The folds.
    jobs : int or None
        Threads (joblib's count); -1 gives every fold its own thread even on fewer cores.

    Returns
    -------
    list
        The tasks' results, in the folds' order.
    """
    from joblib import Parallel, cpu_count, delayed, effective_n_jobs

    workers = len(folds) if jobs == -1 else min(effective_n_jobs(jobs), len(folds))
    if workers == 1:
        return [task(train, test) for train, test in folds]
    with threadpool_limits(max(1, cpu_count() // workers)):
        return Parallel(n_jobs=workers, backend="threading")(
            delayed(task)(train, test) for train, test in folds
        )


def centre(X: np.ndarray) -> np.ndarray:
    """Subtract the rows' mean from X in place.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The rows, centred in place.

    Returns
    -------
    ndarray of shape (n_features,)
        The mean, in X's precision.
    """
    mean = X.mean(axis=0, dtype=np.float64).astype(X.dtype)
    X -= mean
    return mean


@dataclass
class PathPoint:
    """One C of a fold's path: validation scores, the seconds spent fitting and scoring,
    and the solution (coef, intercept of the uncentred rows)."""

    scores: dict[str, float]
    solution: tuple[np.ndarray, np.ndarray]
    fit_seconds: float
    score_seconds: float


def _mean_solution(points: list[PathPoint]) -> tuple[np.ndarray, np.ndarray]:
    """The folds' mean (coef, intercept) at one C, where the refit at that C starts."""
    coefs, intercepts = zip(*(point.solution for point in points))
    return np.mean(coefs, axis=0), np.mean(intercepts, axis=0)


@dataclass
class Rows:
    """The training rows: the features, and what the fits run on, `fitted` (the features
    themselves, or their coordinates in `basis`, the training rows' span). The refit
    drops the coordinates and the basis once it has mapped its solution back."""

    features: np.ndarray
    fitted: np.ndarray | None
    basis: RowSpaceBasis | None


@dataclass(eq=False, repr=False)
class LogisticPathSearch(Search):
    """GridSearchCV(estimator, {"C": Cs}, scoring, cv) for an L2 LogisticRegression
    (`applies`), each fold fitted as a warm-started C path.

    Parameters
    ----------
    estimator, scoring, cv, progress
        As for `Search`; estimator an L2 LogisticRegression.
    Cs : sequence of float
        The candidates' C values, in the order of `cv_results_`.
    n_jobs : int or None
        Folds fitted side by side, one thread each (`per_fold`).
    rowspace : bool or "auto"
        Fit on the training rows' row-space coordinates: "auto" when the rows are
        fewer than the features.

    Attributes
    ----------
    rowspace_components_ : int or None
        The row space's dimension, or None without one.
    """

    Cs: Sequence[float]
    _: KW_ONLY
    n_jobs: int | None = None
    rowspace: bool | str = "auto"

    def _prepared(self, X: np.ndarray, y: Any) -> tuple[Rows, np.ndarray]:
        project = self.rowspace is True or (self.rowspace == "auto" and X.shape[0] < X.shape[1])
        if not project:
            self.rowspace_components_ = None
            return Rows(X, X, None), np.asarray(y)
        basis = RowSpaceBasis()
        Z = basis.fit_transform(X)
        self.rowspace_components_ = basis.n_components_
        return Rows(X, Z, basis), np.asarray(y)

    def _candidates(self) -> list[dict[str, Any]]:
        return [{"C": C} for C in self.Cs]

    def _fits_per_fold(self, candidates: list[dict[str, Any]]) -> int:
        return len(set(self.Cs))

    def _evaluate(self, rows: Rows, y: np.ndarray, candidates: list[dict[str, Any]],
                  folds: Folds, bar: Any) -> Evaluation:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.metrics import check_scoring

        scorer = check_scoring(self.estimator, self.scoring)
        with warnings.catch_warnings():
            # Path points that stop at max_iter only lose score; the refit reports its own.
            warnings.simplefilter("ignore", ConvergenceWarning)
            paths = per_fold(partial(self._fold_path, rows.fitted, y, scorer, bar), folds,
                             self.n_jobs)
        return path_evaluation(paths, self.Cs, _mean_solution)

    def _fold_path(
        self, X: np.ndarray, y: np.ndarray, scorer: Any, bar: Any,
        train: np.ndarray, test: np.ndarray,
    ) -> dict[float, PathPoint]:
        from sklearn.metrics import log_loss

        X_train, X_test, y_test = np.array(X[train]), np.array(X[test]), y[test]
        mean = centre(X_train)
        X_test -= mean
        path: dict[float, PathPoint] = {}
        model = clone(self.estimator).set_params(warm_start=True)
        for C in sorted(set(self.Cs)):
            started = time.perf_counter()
            model.set_params(C=C).fit(X_train, y[train])
            fitted = time.perf_counter()
            scores = {SCORE: float(scorer(model, X_test, y_test))}
            if self.scoring != LOG_LOSS:
                scores[LOG_LOSS] = -log_loss(y_test, model.predict_proba(X_test),
                                             labels=model.classes_)
            scored = time.perf_counter()
            solution = (model.coef_.copy(), model.intercept_ - model.coef_ @ mean)
            path[C] = PathPoint(scores, solution, fitted - started, scored - fitted)
            bar.update(1)
        return path

    def _refit(self, rows: Rows, y: np.ndarray,
               starts: dict[float, tuple[np.ndarray, np.ndarray]]) -> Any:
        # The refit starts from the folds' mean solution at the chosen C, in the row space
        # when there is one; its optimum, mapped back, starts the fit on the features
        # (newton-cg checks the gradient there before stepping).
        coef, intercept = starts[self.best_params_["C"]]
        if rows.basis is None:
            coef, intercept = self._centred_fit(np.array(rows.features), y, coef, intercept)
        else:
            coef, intercept = self._centred_fit(rows.fitted, y, coef, intercept)
            coef = rows.basis.inverse_transform(coef)
        # The coordinates and the factor: not needed on the features.
        rows.fitted = rows.basis = None
        model = self._warm_fit(rows.features, y, coef, intercept)
        return model.set_params(warm_start=self.estimator.warm_start)

    def _centred_fit(self, X: np.ndarray, y: np.ndarray, coef: np.ndarray,
                     intercept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(coef, intercept) of the chosen C's fit on X (centred in place), from and for
        the uncentred rows."""
        mean = centre(X)
        model = self._warm_fit(X, y, coef, intercept + coef @ mean)
        return model.coef_, model.intercept_ - model.coef_ @ mean

    def _warm_fit(self, X: np.ndarray, y: np.ndarray, coef: np.ndarray, intercept: np.ndarray
                  ) -> Any:
        """The estimator at the chosen C fitted on X, y from (coef, intercept), placed
        where `warm_start` reads its starting point."""
        model = self._chosen().set_params(warm_start=True)
        model.coef_, model.intercept_ = coef.astype(X.dtype), intercept.astype(X.dtype)
        return model.fit(X, y)
