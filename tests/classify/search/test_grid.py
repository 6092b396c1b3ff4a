"""The grid search: what GridSearchCV reports, and models without probabilities."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import LinearSVC

from classify.search import GridSearch
from tests.helpers.searching import MULTI, assert_same_results, folds, problem


def test_the_grid_search_reports_what_grid_search_cv_reports() -> None:
    X, y = problem(150, 8, seed=3, spread=0.6)
    grid = {"n_neighbors": [1, 5, 15], "weights": ["uniform", "distance"]}
    ours = GridSearch(KNeighborsClassifier(), grid, cv=folds(), n_jobs=2)
    assert ours.fit(X, y) is ours
    plain = GridSearchCV(KNeighborsClassifier(), grid, cv=folds(), scoring=MULTI,
                         refit="score").fit(X, y)
    assert_same_results(ours.cv_results_, plain.cv_results_)
    assert isinstance(ours.best_estimator_, KNeighborsClassifier)
    assert ours.best_estimator_.get_params()["n_neighbors"] == ours.best_params_["n_neighbors"]


def test_a_model_without_probabilities_is_chosen_by_its_score_alone() -> None:
    X, y = problem(150, 8, seed=3, spread=0.6)
    search = GridSearch(LinearSVC(), {"C": [0.01, 1.0]}, cv=folds(), scoring="f1_macro")
    search.fit(X, y)
    assert "mean_test_neg_log_loss" not in search.cv_results_ and search.tie_break_ is None
    plain = GridSearchCV(LinearSVC(), {"C": [0.01, 1.0]}, cv=folds(), scoring="f1_macro")
    np.testing.assert_allclose(search.cv_results_["mean_test_score"],
                               plain.fit(X, y).cv_results_["mean_test_score"])
    assert search.best_params_ == plain.best_params_
