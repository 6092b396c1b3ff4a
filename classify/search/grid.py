"""GridSearchCV's search for any estimator, with a progress bar and the shared choice.

The fits are joblib tasks, one per (candidate, fold), as in GridSearchCV; their results
arrive in this process as they finish, which is what the bar counts.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.base import clone

from classify.search.base import Search
from classify.search.results import LOG_LOSS, SCORE, progress_bar


def _fit_and_score(
    key: tuple[int, int], estimator: Any, X: np.ndarray, y: np.ndarray, train: np.ndarray,
    test: np.ndarray, scorers: Mapping[str, Any],
) -> tuple[tuple[int, int], dict[str, float], float, float]:  # fmt: skip
    """One candidate on one fold (`key`: their positions): its validation scores, fit
    and score seconds."""
    from sklearn.exceptions import ConvergenceWarning

    started = time.perf_counter()
    with warnings.catch_warnings():
        # A candidate that stops at max_iter only loses score; the refit reports its own.
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(X[train], y[train])
    fitted = time.perf_counter()
    X_test, y_test = X[test], y[test]
    scores = {name: float(scorer(estimator, X_test, y_test)) for name, scorer in scorers.items()}
    return key, scores, fitted - started, time.perf_counter() - fitted


def with_jobs(estimator: Any, n_jobs: int | None) -> Any:
    """`estimator` (or a pipeline's steps) set to use `n_jobs` where it was built with a
    count (None: the estimator ignores it, as LogisticRegression now does)."""
    names = [name for name, value in estimator.get_params().items()
             if name.split("__")[-1] == "n_jobs" and value is not None]
    return estimator.set_params(**{name: n_jobs for name in names})


class GridSearch(Search):
    """GridSearchCV(estimator, param_grid, scoring, cv, n_jobs): the same candidates,
    folds, scores and `cv_results_`; the choice is `results.choose` (near-ties go to the
    best validation log-loss) and the refit uses `n_jobs` inside the estimator (with a bar
    over its rounds or trees where classify.fit_progress has one)."""

    def __init__(
        self,
        estimator: Any,
        param_grid: Mapping[str, Sequence[Any]],
        *,
        scoring: str = "accuracy",
        cv: Any = 3,
        n_jobs: int | None = None,
        progress: bool = True,
    ) -> None:
        self.estimator = estimator
        self.param_grid = param_grid
        self.scoring = scoring
        self.cv = cv
        self.n_jobs = n_jobs
        self.progress = progress

    def fit(self, X: np.ndarray, y: np.ndarray) -> GridSearch:
        from joblib import Parallel, delayed
        from sklearn.metrics import check_scoring
        from sklearn.model_selection import ParameterGrid, check_cv

        from classify.fit_progress import fit_with_progress

        y = np.asarray(y)
        folds = list(check_cv(self.cv, y, classifier=True).split(X, y))
        candidates = list(ParameterGrid(dict(self.param_grid)))
        scorers = {SCORE: check_scoring(self.estimator, self.scoring)}
        if self.scoring != LOG_LOSS and hasattr(self.estimator, "predict_proba"):
            scorers[LOG_LOSS] = check_scoring(self.estimator, LOG_LOSS)
        shape = (len(candidates), len(folds))
        tables = {name: np.full(shape, np.nan) for name in scorers}
        fit_times, score_times = np.zeros(shape), np.zeros(shape)
        tasks = [(i, j) for i in range(len(candidates)) for j in range(len(folds))]
        run = Parallel(n_jobs=self.n_jobs, return_as="generator_unordered")(
            delayed(_fit_and_score)((i, j), clone(self.estimator).set_params(**candidates[i]),
                                    X, y, *folds[j], scorers)
            for i, j in tasks
        )  # fmt: skip
        with progress_bar(len(tasks), self.progress, "search") as bar:
            for (i, j), scores, fit_time, score_time in run:
                for name, value in scores.items():
                    tables[name][i, j] = value
                fit_times[i, j], score_times[i, j] = fit_time, score_time
                bar.update(1)
        self._choose(candidates, tables, fit_times, score_times, folds)
        started = time.perf_counter()
        best = with_jobs(clone(self.estimator).set_params(**self.best_params_), self.n_jobs)
        self.best_estimator_ = fit_with_progress(best, X, y, self.progress)
        self.refit_time_ = time.perf_counter() - started
        self.classes_ = self.best_estimator_.classes_
        return self
