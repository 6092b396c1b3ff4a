"""The row-space search: exact where it applies, the plain search everywhere else."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pytest
from click.testing import CliRunner
from featurefiles import write_feature_file
from scipy.linalg import solve_triangular
from sklearn.linear_model import LogisticRegression

from classify import logreg_path, models, protocol, rowspace
from classify.cli import main
from extract.store import read_features


def _wide_problem(
    n: int = 90, d: int = 300, classes: int = 3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Fewer rows than features, class means plus noise, and one duplicated row."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    X = 0.3 * rng.standard_normal((classes, d))[y] + rng.standard_normal((n, d))
    X[5] = X[5 + classes]  # same class, same features: the Gram matrix is singular
    return X, y


def test_gram_is_X_XT_whatever_the_block_size(tmp_path: Path) -> None:
    X, _ = _wide_problem()
    mapped = np.lib.format.open_memmap(tmp_path / "X.npy", "w+", np.float32, X.shape)
    mapped[:] = X
    for block_rows in (7, 32, 1000):
        K = rowspace.gram(mapped, block_rows=block_rows)
        assert K.dtype == np.float64
        expected = X.astype(np.float32) @ X.astype(np.float32).T
        np.testing.assert_allclose(K, expected, rtol=0, atol=1e-5 * np.abs(expected).max())
        assert np.array_equal(K, K.T)


def test_factor_reproduces_the_gram_matrix_and_finds_dependent_rows() -> None:
    X, _ = _wide_problem()
    K = X @ X.T
    basis, L11, Z = rowspace.factor(K, float(np.finfo(np.float64).eps), np.float64)
    assert Z.shape == (90, 89)  # one duplicated row: rank 89
    assert np.array_equal(Z[basis], L11) and np.allclose(L11, np.tril(L11))
    np.testing.assert_allclose(Z @ Z.T, K, atol=1e-9 * np.abs(K).max())
    # Any row maps in through the basis rows alone, as the training rows themselves do.
    np.testing.assert_allclose(rowspace.project(K[basis], L11), Z, atol=1e-9)


@pytest.mark.parametrize("C", [0.01, 1.0, 100.0])
def test_row_space_fit_is_the_direct_fit(C: float) -> None:
    """Same objective: the same predictions on new rows and, mapped back, the same
    coefficients as LogisticRegression fitted on the features (tight tolerance)."""
    X, y = _wide_problem()
    train, test = np.arange(60), np.arange(60, 90)
    K = rowspace.gram(X)
    basis, L11, Z = rowspace.factor(K[np.ix_(train, train)], 1e-15, np.float64)
    Z_test = rowspace.project(K[np.ix_(train[basis], test)], L11)

    def fit(features: np.ndarray) -> LogisticRegression:
        return LogisticRegression(solver="newton-cg", C=C, tol=1e-10, max_iter=1000).fit(
            features, y[train]
        )

    direct, reduced = fit(X[train]), fit(Z)
    np.testing.assert_allclose(
        reduced.decision_function(Z_test), direct.decision_function(X[test]), atol=1e-6
    )
    np.testing.assert_allclose(reduced.intercept_, direct.intercept_, atol=1e-6)
    coef = solve_triangular(L11, reduced.coef_.T, lower=True, trans="T").T @ X[train][basis]
    np.testing.assert_allclose(coef, direct.coef_, atol=1e-6 * np.abs(direct.coef_).max())


def test_the_path_search_applies_only_to_an_l2_logreg_over_c() -> None:
    logreg = models.get_model("logreg").build(0, 1)
    grid = {"C": [0.1, 1.0]}
    assert logreg_path.applies(logreg, grid, scale=False)
    assert not logreg_path.applies(logreg, grid, scale=True)  # scaler fitted per fold
    assert not logreg_path.applies(logreg, {"C": [1.0], "max_iter": [50]}, scale=False)
    assert not logreg_path.applies(logreg, {"C": [0.0, 1.0]}, scale=False)
    l1 = LogisticRegression(solver="saga", l1_ratio=1.0)
    assert not logreg_path.applies(l1, grid, scale=False)
    svm = models.get_model("svm").build(0, 1)
    assert not logreg_path.applies(svm, grid, scale=False)
    wide, tall = np.zeros((10, 20), np.float32), np.zeros((30, 20), np.float32)
    assert rowspace.pays(wide) and not rowspace.pays(tall)


@pytest.mark.parametrize("C", [0.01, 100.0])
def test_refit_is_the_direct_fit_on_the_original_features(C: float) -> None:
    """The refit, started from the folds' solutions, comes back as an ordinary
    LogisticRegression on all d features with the direct fit's coefficients."""
    X, y = _wide_problem(n=120, d=400, classes=4, seed=2)
    tight = LogisticRegression(solver="newton-cg", tol=1e-10, max_iter=1000)
    folds = list(protocol.folds(3, 42).split(X, y))
    K = rowspace.gram(X)
    _, searched = rowspace.search(tight, [0.01, 100.0], K, y, folds, np.dtype(np.float64), 1)

    fitted = rowspace.refit(tight, C, K, X, y, searched.paths)
    direct = LogisticRegression(solver="newton-cg", tol=1e-10, max_iter=1000, C=C).fit(X, y)

    assert type(fitted) is LogisticRegression and fitted.C == C and not fitted.warm_start
    assert fitted.coef_.shape == direct.coef_.shape and fitted.n_features_in_ == X.shape[1]
    np.testing.assert_allclose(fitted.coef_, direct.coef_, atol=1e-6 * np.abs(direct.coef_).max())
    np.testing.assert_allclose(fitted.intercept_, direct.intercept_, atol=1e-6)
    new_rows = np.random.default_rng(3).standard_normal((20, X.shape[1]))
    np.testing.assert_allclose(fitted.predict_proba(new_rows), direct.predict_proba(new_rows),
                               atol=1e-6)  # fmt: skip


def test_classify_end_to_end_on_features_wider_than_the_training_part(
    outputs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """90 training rows x 300 features: searched and refitted in the row space, saved as
    an ordinary LogisticRegression on the 300 features that predict can use."""
    path = write_feature_file(outputs / "features" / "wide-vgg16-flatten.h5", dims=300)
    refits: list[float] = []
    original_refit = rowspace.refit

    def recording_refit(estimator, C, *args, **kwargs):  # type: ignore[no-untyped-def]
        refits.append(C)
        return original_refit(estimator, C, *args, **kwargs)

    monkeypatch.setattr(rowspace, "refit", recording_refit)
    result = CliRunner().invoke(
        main, ["--features", str(path), "--grid", "C", "--jobs", "2", "--outputs", str(outputs)]
    )
    assert result.exit_code == 0, result.output
    bundle = joblib.load(next((outputs / "models").glob("*.joblib")))
    assert refits == [bundle["params"]["C"]]
    [(_, model)] = bundle["estimator"].steps
    assert type(model) is LogisticRegression and model.coef_.shape == (4, 300)
    assert model.C == bundle["params"]["C"] and model.coef_.dtype == np.float32
    features = read_features(path)
    assert (bundle["estimator"].predict(features.X) == features.y).mean() > 0.9
