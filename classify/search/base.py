"""What every search estimator does once its fold scores are in: choose, and delegate."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin

from classify.search.results import SCORE, choose, cv_results, one_image


class Search(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """A search over candidates: `cv_results_`, `best_index_`, `best_params_`,
    `best_score_`, `tie_break_` (how a near-tie was broken, or None), `n_splits_`, and
    `best_estimator_`, which predict and predict_proba use."""

    scoring: str

    def _choose(
        self, candidates: Sequence[Mapping[str, Any]], tables: Mapping[str, np.ndarray],
        fit_times: np.ndarray, score_times: np.ndarray,
        folds: Sequence[tuple[np.ndarray, np.ndarray]],
    ) -> None:  # fmt: skip
        """Record the results (tables: metric -> candidates x folds) and the choice."""
        self.cv_results_ = cv_results(candidates, tables, fit_times, score_times)
        choice = choose(self.cv_results_, self.scoring, one_image(folds))
        self.best_index_ = choice.index
        self.tie_break_ = choice.tie_break
        self.best_params_ = dict(candidates[choice.index])
        self.best_score_ = float(self.cv_results_[f"mean_test_{SCORE}"][choice.index])
        self.n_splits_ = len(folds)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.best_estimator_.predict(X)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.best_estimator_.predict_proba(X)
