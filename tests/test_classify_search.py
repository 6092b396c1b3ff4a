"""classify.search: searches that are scikit-learn estimators and answer as GridSearchCV."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import LinearSVC

from classify import models
from classify.search import GridSearch, LogisticPathSearch, logreg, make_search, results
from classify.search.rowspace import RowSpaceBasis, gram

MULTI = {"score": "accuracy", "neg_log_loss": "neg_log_loss"}


class Terminal(io.StringIO):
    """stderr as a terminal: tqdm shows its bars there."""

    def isatty(self) -> bool:
        return True


def problem(n: int, d: int, classes: int = 4, seed: int = 0, spread: float = 0.4
             ) -> tuple[np.ndarray, np.ndarray]:
    """Overlapping classes, so that the candidates score differently."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    X = spread * rng.standard_normal((classes, d))[y] + rng.standard_normal((n, d))
    return X, y


def _tight() -> LogisticRegression:
    return LogisticRegression(solver="newton-cg", tol=1e-10, max_iter=1000)


def _folds() -> StratifiedKFold:
    return StratifiedKFold(n_splits=3, shuffle=True, random_state=42)


def _assert_same_results(ours: dict, plain: dict) -> None:
    assert set(ours) == set(plain)
    assert ours["params"] == plain["params"]
    for key, value in plain.items():
        if "test_" in key:
            np.testing.assert_allclose(ours[key], value, atol=1e-7, err_msg=key)


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
    ours = LogisticPathSearch(_tight(), Cs, cv=_folds(), n_jobs=2)
    assert ours.fit(X, y) is ours
    plain = GridSearchCV(_tight(), {"C": Cs}, cv=_folds(), scoring=MULTI, refit="score").fit(X, y)

    assert len(set(ours.cv_results_["mean_test_score"])) > 2  # the candidates really differ
    _assert_same_results(ours.cv_results_, plain.cv_results_)
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


def test_the_grid_search_reports_what_grid_search_cv_reports() -> None:
    X, y = problem(150, 8, seed=3, spread=0.6)
    grid = {"n_neighbors": [1, 5, 15], "weights": ["uniform", "distance"]}
    ours = GridSearch(KNeighborsClassifier(), grid, cv=_folds(), n_jobs=2)
    assert ours.fit(X, y) is ours
    plain = GridSearchCV(KNeighborsClassifier(), grid, cv=_folds(), scoring=MULTI,
                         refit="score").fit(X, y)
    _assert_same_results(ours.cv_results_, plain.cv_results_)
    assert isinstance(ours.best_estimator_, KNeighborsClassifier)
    assert ours.best_estimator_.get_params()["n_neighbors"] == ours.best_params_["n_neighbors"]


def test_a_model_without_probabilities_is_chosen_by_its_score_alone() -> None:
    X, y = problem(150, 8, seed=3, spread=0.6)
    search = GridSearch(LinearSVC(), {"C": [0.01, 1.0]}, cv=_folds(), scoring="f1_macro")
    search.fit(X, y)
    assert "mean_test_neg_log_loss" not in search.cv_results_ and search.tie_break_ is None
    plain = GridSearchCV(LinearSVC(), {"C": [0.01, 1.0]}, cv=_folds(), scoring="f1_macro")
    np.testing.assert_allclose(search.cv_results_["mean_test_score"],
                               plain.fit(X, y).cv_results_["mean_test_score"])
    assert search.best_params_ == plain.best_params_


def test_near_ties_go_to_the_best_validation_log_loss() -> None:
    folds = [(np.arange(60), np.arange(30))] * 3  # one image: 1 / (3 x 30)
    tolerance = results.one_image(folds)
    assert tolerance == pytest.approx(1 / 90)
    table = {"mean_test_score": np.array([0.90, 1.0, 1.0 - 1 / 90, 0.97]),
             "mean_test_neg_log_loss": np.array([-0.1, -0.9, -0.3, -0.05])}
    choice = results.choose(table, "accuracy", tolerance)
    assert choice.index == 2  # within one image of the best, better log-loss than it
    assert "2 candidates score within one validation image" in choice.tie_break
    assert "log-loss" in choice.tie_break
    assert results.choose(table, "neg_log_loss", tolerance) == results.Choice(1, None)
    alone = {"mean_test_score": np.array([0.5, 1.0]), "mean_test_neg_log_loss": np.zeros(2)}
    assert results.choose(alone, "accuracy", tolerance) == results.Choice(1, None)


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
    one = LogisticPathSearch(estimator, Cs, cv=_folds(), n_jobs=1).fit(X, y)
    many = LogisticPathSearch(estimator, Cs, cv=_folds(), n_jobs=-1).fit(X, y)
    assert one.cv_results_["params"] == [{"C": C} for C in Cs]
    for key in ("mean_test_score", "mean_test_neg_log_loss"):
        np.testing.assert_array_equal(one.cv_results_[key], many.cv_results_[key])
    np.testing.assert_array_equal(one.best_estimator_.coef_, many.best_estimator_.coef_)


def test_the_row_space_basis_is_orthonormal_and_spans_the_rows() -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 200))
    X[10] = 2 * X[3]  # a dependent row adds no direction
    basis = RowSpaceBasis()
    Z = basis.fit_transform(X)
    assert Z.shape == (50, 49) and basis.n_components_ == 49
    np.testing.assert_allclose(Z @ Z.T, X @ X.T, atol=1e-9)
    np.testing.assert_allclose(basis.transform(X), Z, atol=1e-9)
    np.testing.assert_allclose(basis.inverse_transform(Z), X, atol=1e-9)
    other = rng.standard_normal((7, 200))
    residual = other - basis.inverse_transform(basis.transform(other))
    np.testing.assert_allclose(X @ residual.T, 0, atol=1e-9)  # what is left is orthogonal


def test_gram_is_X_XT_whatever_the_block_size() -> None:
    X = np.random.default_rng(1).standard_normal((37, 11)).astype(np.float32)
    for block in (1, 5, 64):
        np.testing.assert_allclose(gram(X, block), X.astype(np.float64) @ X.T.astype(np.float64),
                                   atol=1e-5)


def test_the_progress_bar_counts_candidates_times_folds_on_a_terminal(monkeypatch) -> None:
    X, y = problem(90, 5, seed=2)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(results, "PROGRESS_DELAY_S", 0.0)
    GridSearch(KNeighborsClassifier(), {"n_neighbors": [1, 3]}, cv=_folds(), n_jobs=1).fit(X, y)
    shown = terminal.getvalue()
    assert "search:   0%|" in shown and "0/6 [00:00<?" in shown  # 2 candidates x 3 folds, ETA
    assert shown.endswith("\r")  # cleared once done: the report follows
    hidden = io.StringIO()  # not a terminal: no bar
    monkeypatch.setattr(sys, "stderr", hidden)
    GridSearch(KNeighborsClassifier(), {"n_neighbors": [1, 3]}, cv=_folds(), n_jobs=1).fit(X, y)
    assert hidden.getvalue() == ""


def test_a_default_xgb_run_shows_its_rounds_and_saves_no_callback(feature_file, outputs,
                                                                   monkeypatch) -> None:
    """`classify --model xgb` without --grid: a bar over the boosting rounds on a terminal;
    the saved booster and metadata carry no callback, and the bundle still predicts."""
    from classify.bundles import load_bundle
    from classify.experiment import ExperimentConfig
    from classify.experiment import run as run_experiment
    from extract.featurefile import read_features

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(results, "PROGRESS_DELAY_S", 0.0)
    config = ExperimentConfig(features=(feature_file,), model="xgb", jobs=1, outputs=outputs)
    result = run_experiment(config, announce=lambda note: None)
    shown = terminal.getvalue()
    assert "fit:   0%|" in shown and "0/100 [00:00<?" in shown and "round/s" in shown
    assert result.estimator.get_params()["callbacks"] is None
    saved = "".join(path.read_text() for path in result.files.model_dir.iterdir())
    assert "callback" not in saved.lower() and "CountRounds" not in saved
    features = read_features(feature_file)
    model = load_bundle(result.files.model_dir).estimator
    np.testing.assert_array_equal(model.predict(features.X), result.estimator.predict(features.X))


def test_the_rounds_bar_changes_nothing_in_the_model_and_hides_off_a_terminal(monkeypatch):
    from xgboost import XGBClassifier

    from classify.fit_progress import fit_with_progress

    X, y = problem(200, 6, seed=4)
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # not a terminal: no bar
    counted = fit_with_progress(XGBClassifier(n_estimators=15, n_jobs=1), X, y, True)
    assert sys.stderr.getvalue() == ""
    plain = XGBClassifier(n_estimators=15, n_jobs=1).fit(X, y)
    assert counted.get_booster().save_raw("json") == plain.get_booster().save_raw("json")


def test_a_forest_grown_in_steps_is_the_forest_one_fit_grows(monkeypatch) -> None:
    from sklearn.ensemble import RandomForestClassifier

    from classify.fit_progress import fit_with_progress

    X, y = problem(200, 10, seed=5)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(results, "PROGRESS_DELAY_S", 0.0)
    stepped = fit_with_progress(RandomForestClassifier(n_estimators=45, random_state=7,
                                                       n_jobs=2), X, y, True)
    assert "fit:   0%|" in terminal.getvalue() and "0/45 [00:00<?" in terminal.getvalue()
    once = RandomForestClassifier(n_estimators=45, random_state=7, n_jobs=2).fit(X, y)
    assert stepped.get_params() == once.get_params()  # warm_start off again, 45 trees
    assert len(stepped.estimators_) == 45
    for a, b in zip(stepped.estimators_, once.estimators_):
        for name in ("feature", "threshold", "value", "children_left"):
            np.testing.assert_array_equal(getattr(a.tree_, name), getattr(b.tree_, name))
    # One thread adds the trees' votes in one order (two threads: any order, 1 ulp apart).
    stepped.set_params(n_jobs=1)
    once.set_params(n_jobs=1)
    np.testing.assert_array_equal(stepped.predict_proba(X), once.predict_proba(X))


def test_models_the_bars_cannot_follow_fit_once_without_a_warning() -> None:
    import warnings

    from sklearn.ensemble import RandomForestClassifier
    from xgboost import XGBRFClassifier

    from classify.fit_progress import fit_with_progress

    X, y = problem(120, 6, seed=6)
    rf = fit_with_progress(XGBRFClassifier(n_estimators=5, n_jobs=1), X, y, True)
    assert rf.get_params()["callbacks"] is None and rf.predict(X).shape == (120,)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a preset class_weight in steps warns at each one
        balanced = fit_with_progress(RandomForestClassifier(
            n_estimators=6, random_state=0, class_weight="balanced"), X, y, True)
    assert len(balanced.estimators_) == 6
    refitted = fit_with_progress(balanced.set_params(n_estimators=3), X, y, True)
    assert len(refitted.estimators_) == 3  # fitted anew, not grown from the old trees
