"""`classify` end to end: choosing the file, the one-line errors, and what a run leaves."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest

from classify.bundles import load_bundle
from tests.helpers.classifying import FAST, assert_one_line_error, only, run
from tests.helpers.featurefiles import delete_dataset, set_attr, write_feature_file

# -- errors ------------------------------------------------------------------------------


def test_missing_file(outputs: Path) -> None:
    missing = outputs / "features" / "nope.h5"
    assert_one_line_error(
        run(outputs, "--features", str(missing)), f"{missing}: no such feature file"
    )


def test_partial_file(outputs: Path) -> None:
    path = write_feature_file(outputs / "features" / "toy-vgg16-avg.h5", complete=False)
    assert_one_line_error(
        run(outputs, "--features", str(path)), f"{path}: partial extraction (120 rows written"
    )


def test_newer_format_version(feature_file: Path, outputs: Path) -> None:
    set_attr(feature_file, "format_version", 2)
    assert_one_line_error(
        run(outputs, "--features", str(feature_file)),
        f"{feature_file}: format version 2 is newer than this offtheshelf reads (1)",
    )


def test_missing_dataset(feature_file: Path, outputs: Path) -> None:
    delete_dataset(feature_file, "labels")
    assert_one_line_error(
        run(outputs, "--features", str(feature_file)), f"{feature_file}: missing dataset(s) labels"
    )


def test_unknown_model_lists_the_models(feature_file: Path, outputs: Path) -> None:
    assert_one_line_error(
        run(outputs, "--model", "svc"),
        "unknown model 'svc'; did you mean svm? choose one of: logreg, rf, xgb, svm, knn",
    )


def test_unknown_grid_parameter_lists_the_parameters(feature_file: Path, outputs: Path) -> None:
    result = run(outputs, "--model", "rf", "--grid", "C=1")
    assert_one_line_error(result, "Invalid value for '--grid': rf has no parameter 'C'; valid:")
    assert "max_depth" in result.output and "n_estimators" in result.output


def test_invalid_grid_value_is_a_one_line_error(feature_file: Path, outputs: Path) -> None:
    assert_one_line_error(
        run(outputs, "--grid", "C=-1", "--jobs", "1"),
        "--grid: logreg rejected a parameter value: The 'C' parameter of LogisticRegression",
    )


def test_empty_feature_folder(outputs: Path) -> None:
    assert_one_line_error(run(outputs), "no complete feature file; run extract first")


def test_features_and_dataset_together_is_a_usage_error(feature_file: Path, outputs: Path) -> None:
    result = run(outputs, "--features", str(feature_file), "--dataset", "toy", "--backbone", "x")
    assert_one_line_error(result, "give either --features or --dataset/--backbone")


def test_ambiguous_choice_lists_the_candidates(feature_file: Path, outputs: Path) -> None:
    write_feature_file(outputs / "features" / "toy-vgg16-max.h5", attrs={"pooling": "max"})
    result = run(outputs, "--dataset", "toy", "--backbone", "vgg16")
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = result.output.splitlines()
    assert lines[0] == "Error: 2 feature files match --dataset toy --backbone vgg16:"
    assert sorted(line.split(":")[0].strip() for line in lines[1:3]) == [
        "toy-vgg16-avg.h5", "toy-vgg16-max.h5"]
    assert "vgg16 max 224px imagenet float32, 120 rows" in result.output
    assert lines[3] == ("narrow down with --pooling or --image-size, or name one with "
                        "--features")


def test_too_few_usable_classes(outputs: Path) -> None:
    path = write_feature_file(outputs / "features" / "tiny-vgg16-avg.h5", counts=[30, 2])
    assert_one_line_error(
        run(outputs, "--features", str(path)), "fewer than 2 classes have 3 or more images"
    )


def test_unwritable_outputs_is_a_one_line_error(feature_file: Path, outputs: Path) -> None:
    (outputs / "models").write_text("a file where the models folder should be")
    assert_one_line_error(
        run(outputs, "--features", str(feature_file), "--jobs", "1"), f"{outputs / 'models'}/"
    )


# -- choosing the features -----------------------------------------------------------------


def test_dataset_and_backbone_find_the_single_pooling(feature_file: Path, outputs: Path) -> None:
    result = run(outputs, "--dataset", "toy", "--backbone", "vgg16", *FAST)
    assert result.exit_code == 0, result.output
    assert f"features    {feature_file}" in result.output


def test_explicit_pooling_picks_that_file(feature_file: Path, outputs: Path) -> None:
    other = write_feature_file(outputs / "features" / "toy-vgg16-max.h5", attrs={"pooling": "max"})
    result = run(outputs, "--dataset", "toy", "--backbone", "vgg16", "--pooling", "max", *FAST)
    assert result.exit_code == 0, result.output
    assert f"features    {other}" in result.output


def test_default_is_the_newest_complete_file_announced(feature_file: Path, outputs: Path) -> None:
    newer = write_feature_file(outputs / "features" / "toy-resnet50-avg.h5")
    partial = write_feature_file(outputs / "features" / "toy-x-avg.h5", complete=False)
    os.utime(feature_file, (1, 1))
    os.utime(partial, (2_000_000_000, 2_000_000_000))
    result = run(outputs, *FAST)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == f"using the newest complete feature file: {newer}"


# -- what a run leaves ---------------------------------------------------------------------


def test_run_writes_report_metrics_confusion_bundle_and_ledger_that_agree(
    feature_file: Path, outputs: Path
) -> None:
    result = run(outputs, "--features", str(feature_file), "--grid", "C", "--jobs", "2")
    assert result.exit_code == 0, result.output
    for expected in (
        "chosen      C=",
        "cv accuracy",
        "precision    recall  f1-score   support",
        "class_03",
        "accuracy    ",
        "time        load",
        "parameters  cv accuracy  std     log-loss  fit s",
        "<- chosen",
    ):
        assert expected in result.output

    report_dir = only(outputs / "reports")
    assert report_dir.name.startswith("toy-vgg16-avg-logreg-")
    metrics = json.loads((report_dir / "metrics.json").read_text())
    report = (report_dir / "report.txt").read_text()
    assert report in result.output
    assert (report_dir / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    assert f"accuracy    {metrics['accuracy']:.4f}" in report
    assert metrics["grid"] == {"C": [1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0]}
    assert metrics["best_params"]["C"] in metrics["grid"]["C"]
    assert 0.0 <= metrics["cv_score"] <= 1.0
    assert len(metrics["candidates"]) == 8
    assert set(metrics["per_class"]) == {"class_00", "class_01", "class_02", "class_03"}
    for key in (
        "macro_precision",
        "macro_recall",
        "macro_f1",
        "weighted_precision",
        "weighted_recall",
        "weighted_f1",
    ):
        assert 0.0 <= metrics["summary"][key] <= 1.0
    (source,) = metrics["features"]
    assert source["dataset_fingerprint"] == "fingerprint-of-toy"
    assert source["extractor"]["backbone"] == "vgg16"
    assert (metrics["seed"], metrics["test_size"], metrics["cv"]) == (42, 0.25, 3)
    assert set(metrics["timings"]) == {"load", "search", "test", "save"}
    assert np.trace(np.array(metrics["confusion_matrix"])) / metrics["n_test"] == (
        pytest.approx(metrics["accuracy"])
    )
    predictions = metrics["test_predictions"]
    assert len(predictions) == metrics["n_test"]
    assert {"path", "true_class", "predicted_class", "top_probability"} == set(predictions[0])
    assert np.mean([p["true_class"] == p["predicted_class"] for p in predictions]) == (
        pytest.approx(metrics["accuracy"]))
    assert all(p["path"].startswith(p["true_class"] + "/") for p in predictions)
    assert all(0.25 <= p["top_probability"] <= 1 for p in predictions)

    with (outputs / "results.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1
    assert float(rows[0]["accuracy"]) == pytest.approx(metrics["accuracy"])
    assert float(rows[0]["macro_f1"]) == pytest.approx(metrics["macro_f1"])
    assert json.loads(rows[0]["params"]) == metrics["best_params"]
    assert rows[0]["model"] == "logreg" and rows[0]["backbone"] == "vgg16"

    model_dir = only(outputs / "models")
    assert sorted(p.name for p in model_dir.iterdir()) == ["bundle.json", "estimator.skops"]
    bundle = load_bundle(model_dir)
    assert bundle.model == "logreg" and bundle.format_version == 2
    assert bundle.label_names == ["class_00", "class_01", "class_02", "class_03"]
    assert bundle.params == metrics["best_params"]
    assert [e["backbone"] for e in bundle.extractors] == ["vgg16"]
    assert bundle.extractors[0]["feature_dim"] == 16
    assert bundle.metrics["accuracy"] == pytest.approx(metrics["accuracy"])
    assert bundle.estimator.predict(np.zeros((2, 16), dtype=np.float32)).shape == (2,)


def test_no_grid_fits_the_defaults_once(feature_file: Path, outputs: Path) -> None:
    result = run(outputs, "--features", str(feature_file), "--jobs", "1")
    assert result.exit_code == 0, result.output
    assert "search      none (no --grid)" in result.output
    metrics = json.loads(only(only(outputs / "reports"), "metrics.json").read_text())
    assert metrics["grid"] == {} and metrics["cv_score"] is None and metrics["best_params"] == {}


def test_scaled_product_grid_on_another_model(feature_file: Path, outputs: Path) -> None:
    result = run(
        outputs,
        "--features",
        str(feature_file),
        "--model",
        "knn",
        "--scale",
        "--grid",
        "n_neighbors=1,3",
        "--grid",
        "weights",
        "--jobs",
        "1",
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(only(only(outputs / "reports"), "metrics.json").read_text())
    assert len(metrics["candidates"]) == 4
    assert metrics["best_params"].keys() == {"n_neighbors", "weights"}
    bundle = load_bundle(only(outputs / "models"))
    assert [name for name, _ in bundle.estimator.steps] == ["scale", "model"]


def test_small_class_is_dropped_and_cv_reduced_without_a_traceback(outputs: Path) -> None:
    path = write_feature_file(outputs / "features" / "uneven-vgg16-avg.h5", counts=[30, 3, 30, 1])
    result = run(outputs, "--features", str(path), "--cv", "5", *FAST)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert "warning: dropping 1 class(es) with fewer than 3 images: class_03 (1)" in result.output
    assert "note: --cv 5 reduced to 2: class 'class_01' has only 2 training images" in result.output
    data = result.output[result.output.index("\ndata "):].splitlines()[1:3]
    assert data[0].startswith("data        63 x 16 float32, 3 classes; train 47, test 16 ")
    assert data[1].strip() == ("of the file's 64 images in 4 classes; left out with fewer "
                               "than 3 images: class_03 (1)")
    metrics = json.loads(only(only(outputs / "reports"), "metrics.json").read_text())
    assert metrics["cv_used"] == 2
    assert metrics["dropped_classes"] == ["class_03 (1)"]
    assert "class_03" not in load_bundle(only(outputs / "models")).label_names


def test_history_lists_runs_best_first(feature_file: Path, outputs: Path) -> None:
    assert run(outputs, "--history").output.endswith("no runs recorded yet\n")
    hard = write_feature_file(outputs / "features" / "hard-vgg16-avg.h5", dims=1)  # ~50%
    for path in (hard, feature_file):
        assert run(outputs, "--features", str(path), *FAST).exit_code == 0
    result = run(outputs, "--history")
    assert result.exit_code == 0, result.output
    intro, _, header, rule, first, first_report, second, second_report, _, where = (
        result.output.splitlines())
    assert intro == f"2 of 2 runs in {outputs / 'results.csv'}, best accuracy first:"
    assert where.endswith(str(outputs / "index.html")) and (outputs / "index.html").is_file()
    assert header.split() == ["accuracy", "model", "params", "dataset", "extractor", "time"]
    assert set(rule) <= {"-", " "}
    # Both C values score 1.0 on the toy rows; the tie-break takes the more regularised.
    assert first.split()[:6] == ["1", first.split()[1], "logreg", "C=0.1", "toy", "vgg16"]
    assert second.split()[:6] == ["2", second.split()[1], "logreg", "C=1", "hard", "vgg16"]
    assert float(first.split()[1]) > float(second.split()[1])
    pages = sorted((outputs / "reports").glob("*/index.html"))
    assert {first_report.strip(), second_report.strip()} == {str(page) for page in pages}
    table = [line for line in result.output.splitlines() if str(outputs) not in line]
    assert all(len(line) <= 100 for line in table), result.output


def test_history_filters_by_model_and_dataset_and_names_what_it_ignores(
    feature_file: Path, outputs: Path
) -> None:
    hard = write_feature_file(outputs / "features" / "hard-vgg16-avg.h5", dims=1)
    assert run(outputs, "--features", str(hard), *FAST).exit_code == 0
    assert run(outputs, "--features", str(feature_file), "--model", "knn", "--jobs", "1"
               ).exit_code == 0
    knn = run(outputs, "--history", "--model", "knn")
    assert knn.exit_code == 0, knn.output
    assert f"1 of 2 runs in {outputs / 'results.csv'} matching --model knn" in knn.output
    assert " knn " in knn.output and " logreg " not in knn.output
    hard_runs = run(outputs, "--history", "--dataset", "data/hard/", "--grid", "C", "--cv", "4")
    assert "note: --grid, --cv are ignored with --history" in hard_runs.output
    assert "matching --dataset data/hard/" in hard_runs.output and " logreg " in hard_runs.output
    none = run(outputs, "--history", "--backbone", "resnet50")
    assert none.exit_code == 0
    assert "none of the 2 recorded runs matches --backbone resnet50" in none.output
