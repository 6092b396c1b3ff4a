"""The search template: one `fit` that every search shares, and the parameters they share.

A search implements its own evaluation (`_evaluate`: the candidates x folds tables of
validation scores and of fit and score seconds) and its own refit (`_refit`); `Search.fit`
does the rest, the same for all: the folds, the progress bar, `cv_results_`, the choice
(results.choose), the timed refit and `classes_`. scikit-learn's BaseSearchCV owns such a
skeleton too, but its fit runs one joblib fit per candidate and fold, which the path
searches avoid, and its extension point (`_run_search`) is private.

The searches are dataclasses: the generated `__init__` stores each parameter as given,
as scikit-learn's get_params and clone require (eq and repr stay scikit-learn's).
sklearn.model_selection loads at fit time only: importing the searches stays light.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone

from classify.search.results import SCORE, choose, cv_results, one_image, progress_bar

Folds = list[tuple[np.ndarray, np.ndarray]]


@dataclass
class Evaluation:
    """What a search's evaluation found, per candidate and fold (candidates x folds):
    each metric's validation score and the seconds spent fitting and scoring; and what
    the refit starts from (the search's own; None: it starts afresh)."""

    scores: dict[str, np.ndarray]
    fit_seconds: np.ndarray
    score_seconds: np.ndarray
    refit_from: Any = None

    @classmethod
    def empty(cls, n_candidates: int, n_folds: int) -> Evaluation:
        """An evaluation with no results yet, for `record` to fill in.

        Parameters
        ----------
        n_candidates, n_folds : int
            The tables' shape.

        Returns
        -------
        Evaluation
            Zero seconds, no scores, no start.
        """
        return cls({}, np.zeros((n_candidates, n_folds)), np.zeros((n_candidates, n_folds)))

    def record(self, candidate: int, fold: int, scores: Mapping[str, float],
               fit_seconds: float, score_seconds: float) -> None:
        """Record one candidate's results on one fold.

        Parameters
        ----------
        candidate, fold : int
            Their positions.
        scores : mapping of str to float
            Each metric's validation score.
        fit_seconds, score_seconds : float
            The seconds spent fitting and scoring.
        """
        for name, value in scores.items():
            table = self.scores.setdefault(name, np.full(self.fit_seconds.shape, np.nan))
            table[candidate, fold] = value
        self.fit_seconds[candidate, fold] = fit_seconds
        self.score_seconds[candidate, fold] = score_seconds


def path_evaluation(paths: Sequence[Mapping[float, Any]], Cs: Sequence[float],
                    start: Callable[[list[Any]], Any]) -> Evaluation:
    """The evaluation of a search over C that fits each fold's C path.

    Parameters
    ----------
    paths : sequence of mapping of float to point
        Each fold's path: C -> its point, with `scores` (metric -> value), `fit_seconds`
        and `score_seconds`.
    Cs : sequence of float
        The candidates' C values, in their order.
    start : callable
        Where the refit at one C starts, from the folds' points at that C.

    Returns
    -------
    Evaluation
        The tables; the refit starts from C -> `start` of the folds' points at that C.
    """
    return Evaluation(
        {name: np.array([[path[C].scores[name] for path in paths] for C in Cs])
         for name in paths[0][Cs[0]].scores},
        np.array([[path[C].fit_seconds for path in paths] for C in Cs]),
        np.array([[path[C].score_seconds for path in paths] for C in Cs]),
        {C: start([path[C] for path in paths]) for C in paths[0]},
    )


@dataclass(eq=False, repr=False)
class Search(MetaEstimatorMixin, ClassifierMixin, BaseEstimator, ABC):
    """A search over candidates that answers as GridSearchCV, choosing by `results.choose`.

    Parameters
    ----------
    estimator : classifier
        What the search fits, cloned for every fit.
    scoring : str
        What the search maximises: a scikit-learn scorer name.
    cv : int or cross-validation splitter
        The folds, as check_cv takes them (an int: stratified folds).
    progress : bool
        Show a bar over the search's fits, on a terminal only.

    Attributes
    ----------
    cv_results_, best_index_, best_params_, best_score_, n_splits_, refit_time_
        As GridSearchCV's (`best_score_`: the chosen candidate's mean score).
    tie_break_ : str or None
        How a near-tie was broken, or None.
    best_estimator_, classes_
        The chosen candidate refitted on all rows (predict and predict_proba use it),
        and its classes.
    """

    estimator: Any
    _: KW_ONLY
    scoring: str = "accuracy"
    cv: Any = 3
    progress: bool = True

    def fit(self, X: Any, y: Any) -> Search:
        """Evaluate every candidate on every fold, choose one, refit it on all rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The training rows.
        y : array-like of shape (n_samples,)
            Their classes.

        Returns
        -------
        Search
            This search, fitted.
        """
        from sklearn.model_selection import check_cv

        X, y = self._prepared(X, y)
        # The splitters read the labels and the number of rows, not the features.
        rows = np.zeros((len(y), 1))
        folds = list(check_cv(self.cv, y, classifier=True).split(rows, y))
        candidates = self._candidates()
        fits = self._fits_per_fold(candidates) * len(folds)
        with progress_bar(fits, self.progress, "search") as bar:
            evaluation = self._evaluate(X, y, candidates, folds, bar)
        self.cv_results_ = cv_results(candidates, evaluation.scores, evaluation.fit_seconds,
                                      evaluation.score_seconds)
        choice = choose(self.cv_results_, self.scoring, one_image(folds))
        self.best_index_ = choice.index
        self.tie_break_ = choice.tie_break
        self.best_params_ = dict(candidates[choice.index])
        self.best_score_ = float(self.cv_results_[f"mean_test_{SCORE}"][choice.index])
        self.n_splits_ = len(folds)
        started = time.perf_counter()
        self.best_estimator_ = self._refit(X, y, evaluation.refit_from)
        self.refit_time_ = time.perf_counter() - started
        self.classes_ = self.best_estimator_.classes_
        return self

    def predict(self, X: Any) -> np.ndarray:
        """The best estimator's predictions.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to classify.

        Returns
        -------
        ndarray of shape (n_samples,)
            Each row's most likely class.
        """
        return self.best_estimator_.predict(X)

    def predict_proba(self, X: Any) -> np.ndarray:
        """The best estimator's class probabilities.

        Parameters
        ----------
        X : array-like
            Rows to classify, as for `predict`.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Columns in the order of `classes_`.
        """
        return self.best_estimator_.predict_proba(X)

    def _chosen(self) -> Any:
        """A fresh copy of the estimator with the chosen candidate's parameters."""
        return clone(self.estimator).set_params(**self.best_params_)

    def _prepared(self, X: Any, y: Any) -> tuple[Any, np.ndarray]:
        """X and y checked and held as this search's evaluation and refit take them."""
        return X, np.asarray(y)

    @abstractmethod
    def _candidates(self) -> list[dict[str, Any]]:
        """The candidates' parameters, in the order of `cv_results_`."""

    def _fits_per_fold(self, candidates: list[dict[str, Any]]) -> int:
        """How many fits the evaluation reports (bar.update) on each fold."""
        return len(candidates)

    @abstractmethod
    def _evaluate(self, X: Any, y: np.ndarray, candidates: list[dict[str, Any]],
                  folds: Folds, bar: Any) -> Evaluation:
        """Every candidate fitted on every fold's training rows, scored on its validation
        rows ("score", and "neg_log_loss" where the model gives probabilities)."""

    @abstractmethod
    def _refit(self, X: Any, y: np.ndarray, refit_from: Any) -> Any:
        """The chosen candidate (`_chosen`) fitted on all rows."""
