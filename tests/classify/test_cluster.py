"""`classify --cluster`: the same protocol, report and files as the local path, on Dask.

One local cluster of 2 worker processes serves the whole module (the `scheduler`
fixture); the CLI reaches it by its scheduler address, as it would a remote one.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from classify.bundles import load_bundle
from extract.featurefile import read_features
from predict.predicting import top_k
from tests.helpers.classifying import assert_one_line_error, only, run
from tests.helpers.featurefiles import as_float64, write_feature_file
from tests.helpers.searching import LOGREG_TOLERANCE, XGB_TOLERANCE

# Overlapping classes, so the models make mistakes and their test accuracies can differ.
COUNTS = (120, 100, 100, 80)
DIMS = 32
SPREAD = 0.45


@pytest.fixture(scope="module")
def overlapping(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("features")
    return write_feature_file(folder / "blobs-vgg16-avg.h5", counts=COUNTS, dims=DIMS,
                              seed=3, spread=SPREAD)


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
    path = as_float64(write_feature_file(outputs / "features" / "numpy-vgg16-avg.h5"))
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


def test_a_file_the_worker_cannot_see_is_refused_saying_why(tmp_path: Path) -> None:
    from classify.cluster import read_slab
    from extract.featurefile import FeatureFileError

    missing = tmp_path / "elsewhere.h5"
    with pytest.raises(FeatureFileError, match="filesystem the workers share"):
        read_slab(str(missing), 0, 10)
