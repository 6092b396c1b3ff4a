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
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from sklearn.base import clone

from classify.search.base import Search
from classify.search.results import LOG_LOSS, SCORE, progress_bar
from classify.search.rowspace import RowSpaceBasis

T = TypeVar("T")
# Values that mean "L2 penalty" (penalty is deprecated in recent scikit-learn).
L2_PENALTIES = ("l2", "deprecated")
WARM_START_SOLVERS = ("newton-cg", "lbfgs", "sag", "saga", "newton-cholesky")


def applies(estimator: Any, grid: Mapping[str, Sequence[Any]]) -> bool:
    """True for an L2 LogisticRegression searched over C alone, positive finite values."""
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
    )  # fmt: skip


def per_fold(
    task: Callable[[np.ndarray, np.ndarray], T],
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    jobs: int | None,
) -> list[T]:
    """`task(train, test)` for every fold, one thread per fold.

    The fits spend their time in BLAS and compiled loss code, outside the GIL; threads
    share the caller's arrays without copies, and BLAS gets the cores divided among the
    folds. jobs=-1 gives every fold its own thread even on fewer cores.
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


def centre(X: np.ndarray) -> np.ndarray:
    """Subtract the rows' mean from X in place; return the mean (X's precision)."""
    mean = X.mean(axis=0, dtype=np.float64).astype(X.dtype)
    X -= mean
    return mean


@dataclass
class FoldPath:
    """One fold's C path: validation scores, fit seconds and the solution at each C."""

    scores: dict[float, dict[str, float]]
    fit_seconds: dict[float, float]
    score_seconds: dict[float, float]
    solutions: dict[float, tuple[np.ndarray, np.ndarray]]  # C -> (coef, intercept)


class LogisticPathSearch(Search):
    """GridSearchCV(estimator, {"C": Cs}, scoring, cv) for an L2 LogisticRegression
    (`applies`), with `cv_results_`, `best_params_`, `best_score_`, `best_estimator_`.

    rowspace: "auto" projects onto the training rows' span when they are fewer than the
    features; True or False force it.
    """

    def __init__(
        self,
        estimator: Any,
        Cs: Sequence[float],
        *,
        scoring: str = "accuracy",
        cv: Any = 3,
        n_jobs: int | None = None,
        rowspace: bool | str = "auto",
        progress: bool = True,
    ) -> None:
        self.estimator = estimator
        self.Cs = Cs
        self.scoring = scoring
        self.cv = cv
        self.n_jobs = n_jobs
        self.rowspace = rowspace
        self.progress = progress

    def _fold_path(
        self, X: np.ndarray, y: np.ndarray, scorer: Any, bar: Any,
        train: np.ndarray, test: np.ndarray,
    ) -> FoldPath:  # fmt: skip
        from sklearn.metrics import log_loss

        X_train, X_test, y_test = np.array(X[train]), np.array(X[test]), y[test]
        mean = centre(X_train)
        X_test -= mean
        path = FoldPath({}, {}, {}, {})
        model = clone(self.estimator).set_params(warm_start=True)
        for C in sorted(set(self.Cs)):
            started = time.perf_counter()
            model.set_params(C=C).fit(X_train, y[train])
            fitted = time.perf_counter()
            scores = {SCORE: float(scorer(model, X_test, y_test))}
            if self.scoring != LOG_LOSS:
                scores[LOG_LOSS] = -log_loss(y_test, model.predict_proba(X_test),
                                             labels=model.classes_)
            path.scores[C] = scores
            path.fit_seconds[C] = fitted - started
            path.score_seconds[C] = time.perf_counter() - fitted
            path.solutions[C] = (model.coef_.copy(), model.intercept_ - model.coef_ @ mean)
            bar.update(1)
        return path

    def fit(self, X: np.ndarray, y: np.ndarray) -> LogisticPathSearch:
        from functools import partial

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.metrics import check_scoring
        from sklearn.model_selection import check_cv

        y = np.asarray(y)
        folds = list(check_cv(self.cv, y, classifier=True).split(X, y))
        project = self.rowspace is True or (self.rowspace == "auto" and X.shape[0] < X.shape[1])
        basis = RowSpaceBasis() if project else None
        Z = basis.fit_transform(X) if basis is not None else X
        scorer = check_scoring(self.estimator, self.scoring)
        total = len(set(self.Cs)) * len(folds)
        with progress_bar(total, self.progress, "search") as bar, warnings.catch_warnings():
            # Path points that stop at max_iter only lose score; the refit reports its own.
            warnings.simplefilter("ignore", ConvergenceWarning)
            paths = per_fold(partial(self._fold_path, Z, y, scorer, bar), folds, self.n_jobs)
        self._choose(
            [{"C": C} for C in self.Cs],
            {name: np.array([[p.scores[C][name] for p in paths] for C in self.Cs])
             for name in paths[0].scores[self.Cs[0]]},
            np.array([[p.fit_seconds[C] for p in paths] for C in self.Cs]),
            np.array([[p.score_seconds[C] for p in paths] for C in self.Cs]),
            folds,
        )  # fmt: skip
        self.rowspace_components_ = basis.n_components_ if basis is not None else None
        started = time.perf_counter()
        # The refit starts from the folds' mean solution at the chosen C, in the row space
        # when there is one; its optimum, mapped back, starts the fit on the features
        # (newton-cg checks the gradient there before stepping).
        C = self.best_params_["C"]
        coefs, intercepts = zip(*(path.solutions[C] for path in paths))
        del paths
        coef, intercept = self._centred_fit(Z if basis is not None else np.array(X), y,
                                            np.mean(coefs, axis=0), np.mean(intercepts, axis=0))
        if basis is not None:
            coef = basis.inverse_transform(coef)
            del Z, basis  # the coordinates and the factor: not needed on the features
        model = self._warm_fit(X, y, coef, intercept)
        self.best_estimator_ = model.set_params(warm_start=self.estimator.warm_start)
        self.refit_time_ = time.perf_counter() - started
        self.classes_ = self.best_estimator_.classes_
        return self

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
        model = clone(self.estimator).set_params(C=self.best_params_["C"], warm_start=True)
        model.coef_, model.intercept_ = coef.astype(X.dtype), intercept.astype(X.dtype)
        return model.fit(X, y)
