"""The C search as warm-started paths: GridSearchCV's answers, from better starting points."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import joblib
import numpy as np
import pytest
from click.testing import CliRunner
from featurefiles import write_feature_file
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV

from classify import logreg_path, models, protocol, rowspace
from classify.cli import main
from extract.store import read_features


def _tall_problem(
    n: int = 240, d: int = 30, classes: int = 4, seed: int = 0, spread: float = 0.4
) -> tuple[np.ndarray, np.ndarray]:
    """Overlapping classes (more rows than features by default): scores differ from C
    to C."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    X = spread * rng.standard_normal((classes, d))[y] + rng.standard_normal((n, d))
    return X.astype(np.float32), y


@pytest.mark.parametrize(
    "shape, spread, searched",
    [((240, 30), 0.4, logreg_path.Searched), ((120, 400), 0.15, rowspace.Searched)],
    ids=["rows > features: on the features", "rows < features: in the row space"],
)
def test_search_reports_what_grid_search_cv_reports(
    shape: tuple[int, int], spread: float, searched: type
) -> None:
    """Same folds, same accuracy scores, means, stds and ranks, same choice, once every
    fit is converged (at the default tolerance GridSearchCV's cold fits at large C
    stop early, which is what the path corrects)."""
    X, y = _tall_problem(*shape, seed=1, spread=spread)
    X = X.astype(np.float64)  # a tolerance of 1e-10 is below float32's resolution
    grid = {"C": [0.001, 0.01, 0.1, 1.0, 10.0]}
    spec = replace(
        models.get_model("logreg"),
        build=lambda seed, n_jobs: LogisticRegression(solver="newton-cg", tol=1e-10,
                                                      max_iter=1000),
    )  # fmt: skip

    ours = protocol.search(spec, grid, X, y, n_splits=3, scale=False, seed=42, jobs=2)
    plain = GridSearchCV(
        spec.build(42, 1), grid, cv=protocol.folds(3, 42), error_score="raise"
    ).fit(X, y)

    assert isinstance(ours.path, searched)
    assert len({c["mean"] for c in ours.candidates}) > 2  # the candidates really differ
    assert ours.best_params == plain.best_params_
    assert ours.cv_score == pytest.approx(plain.best_score_)
    assert [c["params"] for c in ours.candidates] == plain.cv_results_["params"]
    np.testing.assert_allclose([c["mean"] for c in ours.candidates],
                               plain.cv_results_["mean_test_score"])  # fmt: skip
    np.testing.assert_allclose([c["std"] for c in ours.candidates],
                               plain.cv_results_["std_test_score"], atol=1e-12)  # fmt: skip
    assert [c["rank"] for c in ours.candidates] == plain.cv_results_["rank_test_score"].tolist()


def test_one_thread_per_fold_gives_the_sequential_answer() -> None:
    X, y = _tall_problem(seed=1)
    folds = list(protocol.folds(3, 42).split(X, y))
    estimator = models.get_model("logreg").build(42, 1)
    Cs = [10.0, 0.01, 1.0]  # any order in, scores out in that order
    sequential, one = logreg_path.search(estimator, Cs, X, y, folds, jobs=1)
    threaded, many = logreg_path.search(estimator, Cs, X, y, folds, jobs=-1)
    np.testing.assert_array_equal(threaded, sequential)
    for a, b in zip(one.paths, many.paths):
        np.testing.assert_array_equal(a.solutions[1.0][0], b.solutions[1.0][0])


@pytest.mark.parametrize("C", [0.01, 100.0])
def test_refit_from_the_folds_is_the_direct_fit(C: float) -> None:
    X, y = _tall_problem(seed=2)
    X = X.astype(np.float64)  # a tolerance of 1e-10 is below float32's resolution
    tight = LogisticRegression(solver="newton-cg", tol=1e-10, max_iter=1000)
    folds = list(protocol.folds(3, 42).split(X, y))
    _, searched = logreg_path.search(tight, [0.01, 100.0], X, y, folds, jobs=1)

    fitted = searched.refit(tight, C, X, y)
    direct = LogisticRegression(solver="newton-cg", tol=1e-10, max_iter=1000, C=C).fit(X, y)

    assert type(fitted) is LogisticRegression and fitted.C == C and not fitted.warm_start
    np.testing.assert_allclose(fitted.coef_, direct.coef_, atol=1e-5 * np.abs(direct.coef_).max())
    np.testing.assert_allclose(fitted.intercept_, direct.intercept_, atol=1e-5)


def test_classify_end_to_end_searches_along_the_path(
    outputs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """120 rows x 16 features: the path search and its refit, saved as an ordinary
    LogisticRegression that predicts as well as the search said."""
    path = write_feature_file(outputs / "features" / "toy-resnet50-avg.h5", spread=0.6)
    refits: list[float] = []
    original_refit = logreg_path.Searched.refit

    def recording_refit(self, estimator, C, X, y):  # type: ignore[no-untyped-def]
        refits.append(C)
        return original_refit(self, estimator, C, X, y)

    monkeypatch.setattr(logreg_path.Searched, "refit", recording_refit)
    result = CliRunner().invoke(
        main, ["--features", str(path), "--grid", "C", "--jobs", "-1", "--outputs", str(outputs)]
    )
    assert result.exit_code == 0, result.output
    bundle = joblib.load(next((outputs / "models").glob("*.joblib")))
    assert refits == [bundle["params"]["C"]]
    [(_, model)] = bundle["estimator"].steps
    assert type(model) is LogisticRegression and not model.warm_start
    assert model.C == bundle["params"]["C"] and model.coef_.dtype == np.float32
    features = read_features(path)
    assert (bundle["estimator"].predict(features.X) == features.y).mean() > 0.6
