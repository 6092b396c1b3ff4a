"""A --model that names no model is a usage error (exit 2) decided before anything
loads; a run's report folder points to the model saved beside it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import predict.cli
from tests.helpers.bundles import run_predict
from tests.helpers.imagefolders import make_folder


@pytest.fixture
def images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder of two images; the test fails if the model or the images were read."""
    def not_now(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("read before --model was checked")

    monkeypatch.setattr(predict.cli, "load_bundle", not_now)
    monkeypatch.setattr(predict.cli, "collect_images", not_now)
    return make_folder(tmp_path / "photos", classes=1, per_class=2)


def _error_line(output: str) -> str:
    (line,) = [line for line in output.splitlines() if line.startswith("Error:")]
    return line


def test_a_missing_model_exits_2_before_anything_loads(images: Path, tmp_path: Path) -> None:
    models = tmp_path / "outputs" / "models"
    (models / "flowers5-lite0-logreg-20261205-122906").mkdir(parents=True)
    result = run_predict("--model", models / "nope", images)
    assert result.exit_code == 2, result.output
    assert _error_line(result.output) == (
        f"Error: Invalid value for '--model': {models / 'nope'}: no such model; the models "
        f"classify saved are the folders in {models}/")


def test_a_report_folder_points_to_its_model(images: Path, tmp_path: Path) -> None:
    name = "flowers5-lite0-logreg-20261205-122906"
    report = tmp_path / "outputs" / "reports" / name
    report.mkdir(parents=True)
    (report / "report.txt").write_text("accuracy 0.9\n")
    model = tmp_path / "outputs" / "models" / name
    model.mkdir(parents=True)
    (model / "bundle.json").write_text("{}")
    result = run_predict("--model", report, images)
    assert result.exit_code == 2, result.output
    assert _error_line(result.output) == (
        f"Error: Invalid value for '--model': {report} is a run's report folder; its model "
        f"is {model}")


def test_a_folder_without_a_model_exits_2(images: Path, tmp_path: Path) -> None:
    report = tmp_path / "outputs" / "reports" / "gone"
    report.mkdir(parents=True)
    result = run_predict("--model", report, images)
    assert result.exit_code == 2, result.output
    assert _error_line(result.output) == (
        f"Error: Invalid value for '--model': {report}: no bundle.json; not a model saved by "
        "classify (expected a folder in outputs/models/)")
