"""`classify --cluster`: the same protocol, report and files as the local path, on Dask.

One local cluster of 2 worker processes serves the whole module; the CLI reaches it by
its scheduler address, as it would a remote one.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from featurefiles import write_feature_file
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from test_classify_cli import assert_one_line_error, only, run
from test_classify_search import MULTI, Terminal, problem

from classify.bundles import load_bundle
from classify.search import ClusterSearch, results
from classify.search.on_dask import fit_on_cluster
from extract.featurefile import read_features
from predict.predicting import top_k

# Overlapping classes, so the models make mistakes and their test accuracies can differ.
COUNTS = (120, 100, 100, 80)
DIMS = 32
SPREAD = 0.45
# Both paths minimise the same logreg objective; only the solvers' stopping points differ.
LOGREG_TOLERANCE = 0.02
# XGBoost's distributed hist sketches its bins per worker: slightly different trees.
XGB_TOLERANCE = 0.04


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="module")
def overlapping(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("features")
    return write_feature_file(folder / "blobs-vgg16-avg.h5", counts=COUNTS, dims=DIMS,
                              seed=3, spread=SPREAD)


@pytest.fixture(scope="module")
def client(scheduler: str) -> Iterator[Any]:
    from distributed import Client

    with Client(scheduler) as connected:
        yield connected


def _folds() -> StratifiedKFold:
    return StratifiedKFold(n_splits=3, shuffle=True, random_state=42)


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
    search = ClusterSearch(LogisticRegression(solver="newton-cg"), {"C": Cs}, cv=_folds(),
                           client=client, progress=False)
    assert search.fit(_on_cluster(X), y) is search
    plain = GridSearchCV(LogisticRegression(solver="newton-cg"), {"C": Cs}, cv=_folds(),
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
    search = ClusterSearch(template, grid, cv=_folds(), scoring="f1_macro", client=client,
                           progress=False)
    assert search.fit(_on_cluster(X), y) is search
    plain = GridSearchCV(template, grid, cv=_folds(), refit="score",
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
                               cv=_folds(), client=client)
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


def metrics_of(outputs: Path) -> dict:
    return json.loads((only(outputs / "reports") / "metrics.json").read_text())


SPLIT = ("n_train", "n_test", "cv_used", "seed", "test_size", "dropped_classes")


def same_split(a: dict, b: dict) -> bool:
    return all(a[key] == b[key] for key in SPLIT)


def run_both(tmp_path: Path, scheduler: str, features: Path, *args: str) -> tuple[dict, dict]:
    """The local run and the cluster run of the same command; their metrics."""
    local, remote = tmp_path / "local", tmp_path / "cluster"
    for outputs, extra in ((local, ()), (remote, ("--cluster", scheduler))):
        result = run(outputs, "--features", str(features), "--jobs", "1", *args, *extra)
        assert result.exit_code == 0, result.output
    return metrics_of(local), metrics_of(remote)


def test_logreg_matches_the_local_path(tmp_path: Path, scheduler: str, overlapping: Path
                                       ) -> None:
    local, remote = run_both(tmp_path, scheduler, overlapping, "--model", "logreg",
                             "--grid", "C=0.001,0.01,0.1,1")
    assert remote["cluster"] == scheduler and local["cluster"] is None
    assert same_split(remote, local)  # the same split and folds
    assert remote["best_params"] == local["best_params"]
    assert [c["params"] for c in remote["candidates"]] == [c["params"] for c in local["candidates"]]
    assert remote["cv_score"] == pytest.approx(local["cv_score"], abs=LOGREG_TOLERANCE)
    assert local["accuracy"] < 1.0  # a test that can tell the two apart
    assert remote["accuracy"] == pytest.approx(local["accuracy"], abs=LOGREG_TOLERANCE)
    assert remote["warnings"] == []  # L-BFGS converged

    # The same files as a local run, and a bundle that `predict` uses unchanged.
    outputs = tmp_path / "cluster"
    report = only(outputs / "reports")
    assert {p.name for p in report.iterdir()} == {"report.txt", "metrics.json", "confusion.png",
                                                  "index.html"}
    assert [i["path"] for i in remote["test_predictions"]] == [i["path"] for i in local["test_predictions"]]
    assert "cluster     " in (report / "report.txt").read_text()
    with (outputs / "results.csv").open() as f:
        (row,) = list(csv.DictReader(f))
    assert row["model"] == "logreg" and row["report"] == str(report)
    bundle = load_bundle(only(outputs / "models"))
    features = read_features(overlapping)
    local_bundle = load_bundle(only(tmp_path / "local" / "models"))
    ours = bundle.estimator.predict_proba(features.X)
    theirs = local_bundle.estimator.predict_proba(features.X)
    assert np.abs(ours - theirs).max() < 0.05  # the same model, up to solver tolerance
    top = top_k(bundle.estimator, features.X[:5], bundle.label_names, 2)
    assert len(top) == 5 and all(name in bundle.label_names for name in top[0][0])


def test_xgb_matches_the_local_path(tmp_path: Path, scheduler: str, overlapping: Path) -> None:
    local, remote = run_both(tmp_path, scheduler, overlapping, "--model", "xgb",
                             "--grid", "max_depth=2,4", "--grid", "n_estimators=30")
    assert same_split(remote, local)
    assert len(remote["candidates"]) == 2
    assert remote["accuracy"] == pytest.approx(local["accuracy"], abs=XGB_TOLERANCE)
    assert remote["cv_score"] == pytest.approx(local["cv_score"], abs=XGB_TOLERANCE)
    from xgboost import XGBClassifier

    model_dir = only(tmp_path / "cluster" / "models")
    assert sorted(p.name for p in model_dir.iterdir()) == ["booster.json", "bundle.json"]
    model = load_bundle(model_dir).estimator
    assert type(model) is XGBClassifier  # an ordinary one: predict needs no cluster
    dump = model.get_booster().get_dump()  # one line per node, indented by its depth
    depth = max(len(line) - len(line.lstrip("\t")) for tree in dump for line in tree.splitlines())
    assert depth == remote["best_params"]["max_depth"]
    features = read_features(overlapping)
    assert model.predict_proba(features.X).shape == (len(features.y), len(COUNTS))


def test_the_cluster_scores_by_the_scoring_asked_for(tmp_path: Path, scheduler: str,
                                                     overlapping: Path) -> None:
    local, remote = run_both(tmp_path, scheduler, overlapping, "--model", "logreg",
                             "--grid", "C=0.001,1", "--scoring", "neg_log_loss")
    assert remote["scoring"] == "neg_log_loss" and remote["cv_score"] < 0
    assert remote["cv_score"] == pytest.approx(local["cv_score"], rel=0.01)
    assert [c["mean_score"] for c in remote["candidates"]] == pytest.approx(
        [c["mean_score"] for c in local["candidates"]], rel=0.01)
    assert remote["best_params"] == local["best_params"]


def test_without_a_grid_the_cluster_fits_the_defaults_once(tmp_path: Path, scheduler: str,
                                                           overlapping: Path) -> None:
    local, remote = run_both(tmp_path, scheduler, overlapping, "--model", "logreg")
    assert remote["candidates"] == [] and remote["cv_score"] is None
    assert remote["accuracy"] == pytest.approx(local["accuracy"], abs=LOGREG_TOLERANCE)
    assert "fit" in remote["timings"] and "search" not in remote["timings"]
    assert load_bundle(only(tmp_path / "cluster" / "models")).estimator.C == 1.0


def test_two_classes_fit_the_binomial_model(tmp_path: Path, scheduler: str) -> None:
    """Two classes: one weight vector, as scikit-learn's own binary LogisticRegression."""
    features = write_feature_file(tmp_path / "two-vgg16-avg.h5", counts=(60, 50), dims=DIMS,
                                  spread=0.3)
    local, remote = run_both(tmp_path, scheduler, features, "--model", "logreg", "--grid", "C=1")
    assert remote["accuracy"] == pytest.approx(local["accuracy"], abs=LOGREG_TOLERANCE)
    bundle = load_bundle(only(tmp_path / "cluster" / "models"))
    assert bundle.estimator.coef_.shape == (1, DIMS)


def test_partial_file_is_refused(outputs: Path, scheduler: str) -> None:
    path = write_feature_file(outputs / "features" / "toy-vgg16-avg.h5", complete=False)
    assert_one_line_error(
        run(outputs, "--features", str(path), "--cluster", scheduler),
        f"{path}: partial extraction (120 rows written",
    )


def test_nan_features_are_refused_by_the_workers(outputs: Path, scheduler: str) -> None:
    path = write_feature_file(outputs / "features" / "toy-vgg16-avg.h5")
    with h5py.File(path, "r+") as f:
        f["features"][7, 3] = np.nan
        f["features"][100, 0] = np.inf
    assert_one_line_error(
        run(outputs, "--features", str(path), "--cluster", scheduler),
        f"{path}: 2 row(s) hold NaN or infinite features",
    )


def test_a_float64_file_gets_the_one_note_line_on_the_cluster(outputs: Path, scheduler: str
                                                               ) -> None:
    from test_classify_experiment import _as_float64

    path = _as_float64(write_feature_file(outputs / "features" / "numpy-vgg16-avg.h5"))
    result = run(outputs, "--features", str(path), "--cluster", scheduler, "--grid", "C=1")
    assert result.exit_code == 0, result.output
    assert [line for line in result.output.splitlines() if "float64 features" in line] == [
        f"note: {path}: float64 features, read as float32"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("local:0", "'--cluster': local:0: expected local:N with N a positive number"),
        ("bogus://host", "--cluster bogus://host: cannot reach the Dask scheduler"),
    ],
)
def test_bad_cluster_value(feature_file: Path, outputs: Path, value: str, message: str) -> None:
    assert_one_line_error(run(outputs, "--features", str(feature_file), "--cluster", value),
                          message)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--model", "rf"), "--cluster supports --model logreg or xgb, not rf"),
        (("--model", "knn"), "--cluster supports --model logreg or xgb, not knn"),
        (("--scale",), "--scale is not supported with --cluster"),
        (("--grid", "max_iter=50,100"), "--cluster: logreg searches C only, not max_iter"),
    ],
)
def test_unsupported_runs_are_refused_before_connecting(
    feature_file: Path, outputs: Path, args: tuple[str, ...], message: str
) -> None:
    # local:2 would start a cluster: refused first, these tests take no time.
    assert_one_line_error(
        run(outputs, "--features", str(feature_file), "--cluster", "local:2", *args), message
    )
    assert not (outputs / "reports").exists()


@pytest.mark.parametrize("n_classes", [2, 3])
def test_block_gradient_matches_finite_differences(n_classes: int) -> None:
    from classify.search.dask_logreg import block_loss_grad, n_params

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5))  # float64 here, so the check is exact to rounding
    y = rng.integers(0, n_classes, size=40)
    weight = rng.integers(0, 2, size=40).astype(float)
    theta = rng.normal(size=n_params(5, n_classes))
    _, grad = block_loss_grad(X, y, weight, theta, n_classes)
    step = 1e-6
    numeric = [
        (block_loss_grad(X, y, weight, theta + step * e, n_classes)[0]
         - block_loss_grad(X, y, weight, theta - step * e, n_classes)[0]) / (2 * step)
        for e in np.eye(len(theta))
    ]
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-6)


def test_a_file_the_worker_cannot_see_is_refused_saying_why(tmp_path: Path) -> None:
    from classify.cluster import read_slab
    from extract.featurefile import FeatureFileError

    missing = tmp_path / "elsewhere.h5"
    with pytest.raises(FeatureFileError, match="filesystem the workers share"):
        read_slab(str(missing), 0, 10)
