"""The logistic-regression path search: what GridSearchCV reports, where it applies, and
the same answer on any number of threads."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV

from classify import models
from classify.search import GridSearch, LogisticPathSearch, logreg, make_search
from tests.helpers.searching import MULTI, assert_same_results, folds, problem


def _tight() -> LogisticRegression:
    return LogisticRegression(solver="newton-cg", tol=1e-10, max_iter=1000)


@pytest.mark.parametrize("shape, spread, offset, components",
                         [((240, 30), 0.4, 0.0, None), ((120, 400), 0.15, 0.0, 120),
                          ((240, 30), 0.4, 2.0, None), ((120, 400), 0.15, 2.0, 120)],
                         ids=["rows > features", "rows < features: in the row space",
                              "non-negative, rows > features",
                              "non-negative, in the row space"])
def test_the_path_search_reports_what_grid_search_cv_reports(shape, spread, offset,
                                                              components) -> None:
    """Same folds, scores (accuracy and log-loss), means, stds and ranks, in GridSearchCV's
    schema, once every fit is converged; the refit is the direct fit on the features.
    The searches fit centred rows: features far from zero mean (ReLU outputs) check that
    the intercepts come back for the rows as they are."""
    X, y = problem(*shape, seed=1, spread=spread)
    if offset:
        X = np.maximum(X + offset, 0)
    Cs = [0.001, 0.01, 0.1, 1.0, 10.0]
    ours = LogisticPathSearch(_tight(), Cs, cv=folds(), n_jobs=2)
    assert ours.fit(X, y) is ours
    plain = GridSearchCV(_tight(), {"C": Cs}, cv=folds(), scoring=MULTI, refit="score").fit(X, y)

    assert len(set(ours.cv_results_["mean_test_score"])) > 2  # the candidates really differ
    assert_same_results(ours.cv_results_, plain.cv_results_)
    assert ours.rowspace_components_ == components
    C = ours.best_params_["C"]
    assert ours.best_score_ == pytest.approx(plain.cv_results_["mean_test_score"][ours.best_index_])
    direct = _tight().set_params(C=C).fit(X, y)
    model = ours.best_estimator_
    assert type(model) is LogisticRegression and model.C == C and not model.warm_start
    assert model.n_features_in_ == X.shape[1]
    # It starts at the refit's optimum, mapped back with the uncentred rows' intercept,
    # so newton-cg finds the gradient below tol there (7 iterations from a wrong one).
    assert model.n_iter_.max() <= 1
    np.testing.assert_allclose(model.coef_, direct.coef_, atol=1e-5 * np.abs(direct.coef_).max())
    np.testing.assert_allclose(ours.predict_proba(X), direct.predict_proba(X), atol=1e-6)


def test_the_path_search_applies_only_to_an_l2_logreg_over_c() -> None:
    logreg_model = models.get_model("logreg").build(0, 1)
    grid = {"C": [0.1, 1.0]}
    assert logreg.applies(logreg_model, grid)
    assert isinstance(make_search(logreg_model, grid, scoring="accuracy", cv=3, n_jobs=1),
                      LogisticPathSearch)
    assert not logreg.applies(logreg_model, {"C": [1.0], "max_iter": [50]})
    assert not logreg.applies(logreg_model, {"C": [0.0, 1.0]})
    assert not logreg.applies(LogisticRegression(solver="saga", l1_ratio=1.0), grid)
    svm = models.get_model("svm").build(0, 1)
    assert not logreg.applies(svm, grid)
    assert isinstance(make_search(svm, grid, scoring="accuracy", cv=3, n_jobs=1), GridSearch)


def test_one_thread_per_fold_gives_the_sequential_answer() -> None:
    X, y = problem(240, 30, seed=1)
    X = X.astype(np.float32)
    estimator = models.get_model("logreg").build(42, 1)
    Cs = [10.0, 0.01, 1.0]  # any order in, candidates in that order
    one = LogisticPathSearch(estimator, Cs, cv=folds(), n_jobs=1).fit(X, y)
    many = LogisticPathSearch(estimator, Cs, cv=folds(), n_jobs=-1).fit(X, y)
    assert one.cv_results_["params"] == [{"C": C} for C in Cs]
    for key in ("mean_test_score", "mean_test_neg_log_loss"):
        np.testing.assert_array_equal(one.cv_results_[key], many.cv_results_[key])
    np.testing.assert_array_equal(one.best_estimator_.coef_, many.best_estimator_.coef_)


