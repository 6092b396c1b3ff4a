"""Small classification problems and the checks the search tests share."""

from __future__ import annotations

import io

import numpy as np
from sklearn.model_selection import StratifiedKFold

# The two scores every search records: its own and the log-loss that breaks near ties.
MULTI = {"score": "accuracy", "neg_log_loss": "neg_log_loss"}
# A search on Dask against the same search here: both minimise the same logreg objective
# and only the solvers' stopping points differ; XGBoost's distributed hist sketches its
# bins per worker, so its trees differ slightly.
LOGREG_TOLERANCE = 0.02
XGB_TOLERANCE = 0.04


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


def folds() -> StratifiedKFold:
    """Three stratified folds, the same at every call."""
    return StratifiedKFold(n_splits=3, shuffle=True, random_state=42)


def assert_same_results(ours: dict, plain: dict) -> None:
    """The same keys, candidates and test scores as GridSearchCV's `cv_results_`."""
    assert set(ours) == set(plain)
    assert ours["params"] == plain["params"]
    for key, value in plain.items():
        if "test_" in key:
            np.testing.assert_allclose(ours[key], value, atol=1e-7, err_msg=key)
