"""One model's fit with a progress bar, where its library offers a public hook for one.

xgb counts its boosting rounds through XGBoost's callback API (a TrainingCallback),
set for this fit only, so the fitted model and the bundle saved from it carry no
callback. rf grows its forest in warm_start steps: with an integer random_state,
scikit-learn seeds each added tree as a single fit would, so the forest is the same
tree for tree (behind --scale, in a pipeline, it fits at once). Other models fit
without a bar. The bar shows as the searches' do:
after PROGRESS_DELAY_S, on a terminal only (classify.search.results.progress_bar).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from classify.search.results import progress_bar

# rf: at most about this many steps, each with the same number of trees per job (a
# step waits for its slowest tree, so fewer, even steps leave fewer cores idle).
FOREST_STEPS = 10


def _counts_rounds(estimator: Any) -> bool:
    """An XGBoost model that takes callbacks (its random forests do not) and has none."""
    if not type(estimator).__module__.startswith("xgboost"):
        return False
    from xgboost import XGBModel, XGBRFClassifier, XGBRFRegressor

    return (isinstance(estimator, XGBModel)
            and not isinstance(estimator, (XGBRFClassifier, XGBRFRegressor))
            and estimator.get_params()["callbacks"] is None)


def fit_with_progress(estimator: Any, X: np.ndarray, y: np.ndarray, enabled: bool) -> Any:
    """estimator.fit(X, y), with a bar over its rounds or trees where it has them."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline

    final = estimator[-1] if isinstance(estimator, Pipeline) else estimator
    if _counts_rounds(final):
        return _fit_counting_rounds(estimator, final, X, y, enabled)
    if isinstance(estimator, RandomForestClassifier) and _grows_the_same(estimator):
        return _grow_in_steps(estimator, X, y, enabled)
    return estimator.fit(X, y)


def _grows_the_same(forest: Any) -> bool:
    """True when growing `forest` in steps gives the forest one fit would: an integer
    seed (else the trees' seeds differ), no oob score (computed again at every step), no
    class_weight preset (scikit-learn warns at every step that it is computed per step),
    and not fitted already (warm_start would keep its trees)."""
    params = forest.get_params()
    return (isinstance(params["random_state"], int) and isinstance(params["n_estimators"], int)
            and params["n_estimators"] > 0 and not params["warm_start"]
            and not params["oob_score"] and not isinstance(params["class_weight"], str)
            and not hasattr(forest, "estimators_"))


def _fit_counting_rounds(estimator: Any, booster: Any, X: np.ndarray, y: np.ndarray,
                         enabled: bool) -> Any:
    """Fit with a callback on `booster` (the XGBoost step of `estimator`) that counts rounds."""
    # Defined here so that importing this module does not import XGBoost.
    from xgboost.callback import TrainingCallback

    class CountRounds(TrainingCallback):
        def __init__(self, bar: Any) -> None:
            super().__init__()
            self.bar = bar

        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            self.bar.update(1)
            return False  # never stops the training

    with progress_bar(booster.get_num_boosting_rounds(), enabled, "fit", "round") as bar:
        booster.set_params(callbacks=[CountRounds(bar)])
        try:
            return estimator.fit(X, y)
        finally:
            booster.set_params(callbacks=None)


def _grow_in_steps(forest: Any, X: np.ndarray, y: np.ndarray, enabled: bool) -> Any:
    """The forest fitted in warm_start steps of a few trees, each step one bar update."""
    from joblib import effective_n_jobs

    n_trees, jobs = forest.n_estimators, effective_n_jobs(forest.n_jobs)
    step = jobs * math.ceil(n_trees / (FOREST_STEPS * jobs))
    with progress_bar(n_trees, enabled, "fit", "tree") as bar:
        forest.set_params(warm_start=True)
        try:
            for grown in range(step, n_trees + step, step):
                forest.set_params(n_estimators=min(grown, n_trees)).fit(X, y)
                bar.update(forest.n_estimators - bar.n)
        finally:
            forest.set_params(warm_start=False, n_estimators=n_trees)
    return forest
