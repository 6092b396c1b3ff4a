"""Fits with a progress bar: the bar changes nothing in the model and stays off a terminal."""

from __future__ import annotations

import io
import sys

import numpy as np

from classify.search import results
from tests.helpers.searching import Terminal, problem


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
