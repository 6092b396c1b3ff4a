"""GridSearchCV's search for any estimator, with a progress bar and the shared choice.

The fits are joblib tasks, one per (candidate, fold), as in GridSearchCV; their results
arrive in this process as they finish, which is what the bar counts.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass
from typing import Any

import numpy as np
from sklearn.base import clone

from classify.search.base import Evaluation, Folds, Search
from classify.search.results import LOG_LOSS, SCORE


def _fit_and_score(
    key: tuple[int, int], estimator: Any, X: np.ndarray, y: np.ndarray, train: np.ndarray,
    test: np.ndarray, scorers: Mapping[str, Any],
) -> tuple[tuple[int, int], dict[str, float], float, float]:
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
    count (None: the estimator ignores it, as LogisticRegression now does).

    Parameters
    ----------
    estimator : estimator
        The estimator, changed in place.
    n_jobs : int or None
        The count.

    Returns
    -------
    estimator
        `estimator` itself.
    """
    names = [name for name, value in estimator.get_params().items()
             if name.split("__")[-1] == "n_jobs" and value is not None]
    return estimator.set_params(**{name: n_jobs for name in names})


@dataclass(eq=False, repr=False)
class GridSearch(Search):
    """GridSearchCV(estimator, param_grid, scoring, cv, n_jobs): the same candidates,
    folds, scores and `cv_results_`; the choice is `results.choose` (near-ties broken by
    the validation log-loss) and the refit uses `n_jobs` inside the estimator (with a bar
    over its rounds or trees where classify.fit_progress has one).

    Parameters
    ----------
    estimator, scoring, cv, progress
        As for `Search`.
    param_grid : mapping of str to sequence
        Each parameter's values; the candidates are their product (ParameterGrid).
    n_jobs : int or None
        Fits run side by side (joblib's count; -1: all cores), and the refit's own.
    """

    param_grid: Mapping[str, Sequence[Any]]
    _: KW_ONLY
    n_jobs: int | None = None

    def _candidates(self) -> list[dict[str, Any]]:
        from sklearn.model_selection import ParameterGrid

        return list(ParameterGrid(dict(self.param_grid)))

    def _evaluate(self, X: np.ndarray, y: np.ndarray, candidates: list[dict[str, Any]],
                  folds: Folds, bar: Any) -> Evaluation:
        from joblib import Parallel, delayed
        from sklearn.metrics import check_scoring

        scorers = {SCORE: check_scoring(self.estimator, self.scoring)}
        if self.scoring != LOG_LOSS and hasattr(self.estimator, "predict_proba"):
            scorers[LOG_LOSS] = check_scoring(self.estimator, LOG_LOSS)
        evaluation = Evaluation.empty(len(candidates), len(folds))
        run = Parallel(n_jobs=self.n_jobs, return_as="generator_unordered")(
            delayed(_fit_and_score)((i, j), clone(self.estimator).set_params(**candidates[i]),
                                    X, y, *folds[j], scorers)
            for i in range(len(candidates)) for j in range(len(folds))
        )
        for (i, j), scores, fit_seconds, score_seconds in run:
            evaluation.record(i, j, scores, fit_seconds, score_seconds)
            bar.update(1)
        return evaluation

    def _refit(self, X: np.ndarray, y: np.ndarray, refit_from: None) -> Any:
        from classify.fit_progress import fit_with_progress

        return fit_with_progress(with_jobs(self._chosen(), self.n_jobs), X, y, self.progress)
