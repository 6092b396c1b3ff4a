"""classify.experiment: the run a notebook calls, scoring choices, float64 files, and the
flower case where ties used to pick a model too unsure to be useful."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from classify.experiment import ExperimentConfig, ExperimentError
from classify.experiment import run as run_experiment
from classify.models import DECADES_1E4_TO_1E3
from extract.cli import main as extract_main
from extract.datasets import FLOWERS17_CLASSES, FLOWERS17_PER_CLASS
from tests.helpers.classifying import assert_one_line_error, only, run
from tests.helpers.featurefiles import as_float64, write_feature_file
from tests.helpers.imagefolders import FLOWERS17_JPG


def test_a_notebook_runs_the_experiment_and_gets_typed_results(feature_file: Path,
                                                               outputs: Path) -> None:
    notes: list[str] = []
    config = ExperimentConfig(features=(feature_file,), model="logreg",
                              grid={"C": [0.01, 1.0]}, jobs=1, outputs=outputs, progress=False)
    result = run_experiment(config, announce=notes.append)
    assert result.search.best_params_ == result.metrics.best_params
    assert list(result.search.cv_results_["params"]) == [{"C": 0.01}, {"C": 1.0}]
    assert result.metrics.accuracy == pytest.approx(
        np.mean([p.true_class == p.predicted_class for p in result.metrics.test_predictions]))
    assert result.files.model_dir.is_dir() and (result.files.report_dir / "metrics.json").exists()
    assert result.files.ledger.read_text().count("\n") == 2  # header and this run
    assert result.report.startswith(f"features    {feature_file}")
    assert any(note.startswith("searching 2 candidate(s) x 3 folds") for note in notes)
    with pytest.raises(ExperimentError, match="^grid: logreg has no parameter 'gamma'"):
        run_experiment(ExperimentConfig(features=(feature_file,), grid={"gamma": [1]}))


@pytest.mark.parametrize("scoring", ["balanced_accuracy", "f1_macro", "neg_log_loss"])
def test_scoring_chooses_what_the_search_maximises(feature_file: Path, outputs: Path,
                                                   scoring: str) -> None:
    result = run(outputs, "--features", str(feature_file), "--grid", "C=0.001,1", "--jobs", "1",
                 "--scoring", scoring)
    assert result.exit_code == 0, result.output
    metrics = json.loads(only(only(outputs / "reports"), "metrics.json").read_text())
    assert metrics["scoring"] == scoring
    assert f"parameters  cv {scoring}" in result.output and f"cv {scoring} " in result.output
    scores = [c["mean_score"] for c in metrics["candidates"]]
    assert metrics["cv_score"] == max(scores) or metrics["tie_break"]
    if scoring == "neg_log_loss":  # the log-loss itself decides: nothing to break
        assert metrics["tie_break"] is None and all(score < 0 for score in scores)


def test_an_unknown_scoring_is_refused(feature_file: Path, outputs: Path) -> None:
    assert_one_line_error(run(outputs, "--scoring", "roc_auc"), "Invalid value for '--scoring'")


def test_a_float64_file_is_read_as_float32_with_one_note(outputs: Path) -> None:
    path = as_float64(write_feature_file(outputs / "features" / "numpy-vgg16-avg.h5"))
    result = run(outputs, "--features", str(path), "--jobs", "1", "--grid", "C=0.1,1")
    assert result.exit_code == 0, result.output
    notes = [line for line in result.output.splitlines() if line.startswith("note:")]
    assert notes == [f"note: {path}: float64 features, read as float32"]
    assert "accuracy    1.0000" in result.output or "accuracy    0.9" in result.output


def _numpy_file(path: Path, attrs: dict) -> Path:
    """A feature file as a user writes it from numpy: float64 rows, the README's datasets
    and nothing of what extract records."""
    rng = np.random.default_rng(0)
    y = np.arange(90) % 3
    with h5py.File(path, "w") as f:
        f["features"] = rng.standard_normal((90, 12)) + y[:, None]
        f["labels"] = y.astype(np.int32)
        f["label_names"] = ["cat", "dog", "owl"]
        f["paths"] = [f"{i:03d}.jpg" for i in range(90)]
        f.attrs.update(attrs)
    return path


def test_a_file_written_from_numpy_with_the_two_attributes_is_classified(outputs: Path
                                                                          ) -> None:
    path = _numpy_file(outputs / "mine.h5", {"format_version": 1, "complete": True})
    result = run(outputs, "--features", str(path), "--jobs", "1", "--grid", "C=0.1,1")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert [line for line in result.output.splitlines() if line.startswith("note:")] == [
        f"note: {path}: float64 features, read as float32"]
    assert "data        90 x 12 float32, 3 classes" in result.output


@pytest.mark.parametrize(("attrs", "message"), [
    ({}, ("no format_version attribute; not an offtheshelf file (one you write yourself "
          "needs format_version=1 and complete=True")),
    ({"format_version": 1}, ("no complete=True attribute: extract sets it when it finishes; "
                             "on a file you write yourself, set it once every row is in")),
], ids=["no format_version", "no complete"])
def test_a_file_written_from_numpy_without_them_is_told_what_to_add(
        outputs: Path, attrs: dict, message: str) -> None:
    path = _numpy_file(outputs / "mine.h5", attrs)
    assert_one_line_error(run(outputs, "--features", str(path)), f"{path}: {message}")


@pytest.mark.parametrize("value", [np.nan, 1e300], ids=["NaN", "beyond float32: inf"])
def test_a_float64_file_with_non_finite_values_is_still_refused(outputs: Path, value: float
                                                                ) -> None:
    def poison(X: np.ndarray) -> None:
        X[5, 3] = value

    path = as_float64(write_feature_file(outputs / "features" / "bad-vgg16-avg.h5"), poison)
    assert_one_line_error(run(outputs, "--features", str(path)),
                          f"{path}: 1 row(s) hold NaN or infinite features")


@pytest.mark.skipif(not FLOWERS17_JPG.is_dir(), reason=f"flowers17 photos not at {FLOWERS17_JPG}")
def test_four_flower_classes_give_a_sure_model(tmp_path: Path) -> None:
    """4 flowers17 classes x 30 photos through efficientnet_lite0's ImageNet weights: most
    C values tie at the top of the cross-validation, and the choice among them must be a
    model whose probabilities say what it knows (the most regularised one said 0.37)."""
    photos = tmp_path / "photos"
    for name in ("daffodil", "tulip", "sunflower", "pansy"):
        first = FLOWERS17_CLASSES.index(name) * FLOWERS17_PER_CLASS + 1
        (photos / name).mkdir(parents=True)
        for number in range(first, first + 30):
            (photos / name / f"image_{number:04d}.jpg").symlink_to(
                FLOWERS17_JPG / f"image_{number:04d}.jpg")
    features = tmp_path / "flowers.h5"
    extracted = CliRunner().invoke(extract_main, ["--dataset", str(photos), "--backbone",
                                                  "efficientnet_lite0", "--output", str(features)])
    assert extracted.exit_code == 0, extracted.output
    result = run_experiment(ExperimentConfig(features=(features,), grid={"C": DECADES_1E4_TO_1E3},
                                             outputs=tmp_path / "outputs", progress=False),
                            announce=lambda note: None)
    metrics = result.metrics
    top = [p.top_probability for p in metrics.test_predictions]
    assert len(top) == 30 and metrics.accuracy >= 0.9
    assert np.median(top) > 0.9, result.report
    assert metrics.tie_break is not None and "log-loss" in metrics.tie_break
    assert "tie-break   " in result.report
