"""The search on Dask: the scores and model GridSearchCV gives, its bar on a terminal
only, and the models it refuses."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV

from classify.search import ClusterSearch, results
from classify.search.on_dask import fit_on_cluster
from tests.helpers.searching import (
    LOGREG_TOLERANCE,
    MULTI,
    XGB_TOLERANCE,
    Terminal,
    folds,
    problem,
)


@pytest.fixture(scope="module")
def client(scheduler: str) -> Iterator[Any]:
    from distributed import Client

    with Client(scheduler) as connected:
        yield connected


def _on_cluster(X: np.ndarray) -> Any:
    import dask.array as da

    return da.from_array(X.astype(np.float32), chunks=(50, -1))  # 5 row blocks


@pytest.mark.parametrize("offset", [0.0, 2.0], ids=["centred features", "non-negative"])
def test_the_logreg_cluster_search_answers_as_grid_search_cv(client: Any, offset: float
                                                             ) -> None:
    """The same scores and model as GridSearchCV; the optimiser runs on centred rows, and
    features far from zero mean (ReLU outputs) check that it hands back the intercept for
    the rows as they are."""
    X, y = problem(240, 16, seed=1, spread=0.5)
    if offset:
        X = np.maximum(X + offset, 0)
    Cs = [0.001, 0.01, 0.1, 1.0]
    search = ClusterSearch(LogisticRegression(solver="newton-cg"), {"C": Cs}, cv=folds(),
                           client=client, progress=False)
    assert search.fit(_on_cluster(X), y) is search
    plain = GridSearchCV(LogisticRegression(solver="newton-cg"), {"C": Cs}, cv=folds(),
                         scoring=MULTI, refit="score").fit(X.astype(np.float32), y)
    ours, theirs = search.cv_results_, plain.cv_results_
    assert set(ours) == set(theirs) and ours["params"] == theirs["params"]
    assert len(set(theirs["mean_test_score"])) > 2  # the candidates really differ
    for key in ("mean_test_score", "split0_test_score", "std_test_score"):
        np.testing.assert_allclose(ours[key], theirs[key], atol=LOGREG_TOLERANCE, err_msg=key)
    np.testing.assert_allclose(ours["mean_test_neg_log_loss"], theirs["mean_test_neg_log_loss"],
                               rtol=0.01)
    assert len(set(ours["mean_fit_time"])) == len(Cs) and all(ours["std_fit_time"] > 0)
    assert search.n_splits_ == 3 and search.refit_time_ > 0
    assert search.best_params_ == ours["params"][search.best_index_]
    assert search.best_score_ == ours["mean_test_score"][search.best_index_]

    # The model a local run saves: it predicts here, without the cluster.
    model = search.best_estimator_
    assert type(model) is LogisticRegression and model.C == search.best_params_["C"]
    direct = LogisticRegression(solver="newton-cg", C=model.C).fit(X, y)
    np.testing.assert_allclose(model.predict_proba(X), direct.predict_proba(X), atol=0.02)
    assert np.mean(search.predict(X) == direct.predict(X)) > 0.97


def test_the_xgb_cluster_search_answers_as_grid_search_cv(client: Any) -> None:
    from xgboost import XGBClassifier

    X, y = problem(240, 8, seed=2, spread=0.8)
    grid = {"max_depth": [1, 4], "n_estimators": [5, 20]}
    template = XGBClassifier(tree_method="hist", random_state=0, n_jobs=1)
    search = ClusterSearch(template, grid, cv=folds(), scoring="f1_macro", client=client,
                           progress=False)
    assert search.fit(_on_cluster(X), y) is search
    plain = GridSearchCV(template, grid, cv=folds(), refit="score",
                         scoring={"score": "f1_macro", "neg_log_loss": "neg_log_loss"})
    theirs = plain.fit(X.astype(np.float32), y).cv_results_
    ours = search.cv_results_
    assert set(ours) == set(theirs) and ours["params"] == theirs["params"]
    assert len(set(theirs["mean_test_score"])) == len(ours["params"])
    np.testing.assert_allclose(ours["mean_test_score"], theirs["mean_test_score"],
                               atol=XGB_TOLERANCE)
    # Each fit timed, not one average smeared over the cells.
    assert len(set(ours["mean_fit_time"])) == len(ours["params"])
    assert all(ours["std_fit_time"] > 0) and all(ours["mean_score_time"] > 0)
    model = search.best_estimator_
    assert type(model) is XGBClassifier
    assert model.get_params()["max_depth"] == search.best_params_["max_depth"]
    assert model.predict_proba(X.astype(np.float32)).shape == (len(y), 4)


def test_the_cluster_search_shows_its_bar_on_a_terminal_only(client: Any, monkeypatch) -> None:
    X, y = problem(120, 8, seed=3)
    monkeypatch.setattr(results, "PROGRESS_DELAY_S", 0.0)
    for stderr in (Terminal(), io.StringIO()):
        monkeypatch.setattr(sys, "stderr", stderr)
        search = ClusterSearch(LogisticRegression(solver="newton-cg"), {"C": [0.1, 1.0]},
                               cv=folds(), client=client)
        search.fit(_on_cluster(X), y)
        shown = stderr.getvalue()
        if isinstance(stderr, Terminal):  # 2 C values x 3 folds, with an ETA, then cleared
            assert "search:   0%|" in shown and "0/6 [00:00<?" in shown
            assert shown.endswith("\r")
        else:
            assert shown == ""


def test_the_cluster_search_refuses_other_models(client: Any) -> None:
    from sklearn.neighbors import KNeighborsClassifier

    X, y = problem(60, 4)
    with pytest.raises(TypeError, match="LogisticRegression or an XGBClassifier, not KNeigh"):
        ClusterSearch(KNeighborsClassifier(), {"n_neighbors": [1]}, client=client
                      ).fit(_on_cluster(X), y)
    with pytest.raises(ValueError, match=r"positive, finite C values only, not C in \[0.0\]"):
        ClusterSearch(LogisticRegression(), {"C": [0.0]}, client=client).fit(_on_cluster(X), y)
    with pytest.raises(ValueError, match="L2 LogisticRegression"):
        fit_on_cluster(LogisticRegression(l1_ratio=1.0, solver="saga"), _on_cluster(X), y,
                       client=client)
