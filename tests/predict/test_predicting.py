"""The library under `predict`: the features it computes are the ones the model was
trained on, for a single extractor and for every extractor of a fused model."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from classify import fusion
from classify.bundles import load_bundle
from classify.cli import main as classify_main
from extract.backbones import registry
from extract.cli import main as extract_main
from predict.cli import main as predict_main
from tests.helpers.bundles import SIZE
from tests.helpers.imagefolders import make_folder


def test_features_are_rounded_to_the_dtype_the_model_was_trained_on(trained):
    """A model trained on a --dtype float16 file sees float16-rounded features."""

    from predict.predicting import feature_rows

    root, _, _ = trained
    images = sorted((root / "class_0").glob("*.png"))[:4]
    extractor = {"backbone": "vgg16", "pooling": "avg", "input_size": int(SIZE),
                 "preprocessing": registry.preprocessing_name("vgg16"), "feature_dim": 512,
                 "weights": "random"}
    exact = np.stack([row for _, row in feature_rows(images, extractor, "random", 2)])
    rounded = np.stack([row for _, row in feature_rows(
        images, {**extractor, "dtype": "float16"}, "random", 2)])
    assert rounded.dtype == np.float32
    np.testing.assert_array_equal(rounded, exact.astype(np.float16).astype(np.float32))
    assert not np.array_equal(rounded, exact)


def test_predict_rebuilds_every_extractor_of_a_fused_model(tmp_path: Path) -> None:
    """vgg16 avg + max pooling (random weights, 32 px): predict's scores are the
    estimator's on the fused training features, image by image."""
    root = make_folder(tmp_path / "photos", classes=3, per_class=8, ext="png")
    outputs = tmp_path / "outputs"
    files = []
    for pooling in ("avg", "max"):
        files.append(outputs / "features" / f"photos-vgg16-{pooling}.h5")
        result = CliRunner().invoke(extract_main, [
            "--dataset", str(root), "--backbone", "vgg16", "--pooling", pooling,
            "--weights", "random", "--image-size", "32", "--output", str(files[-1])])
        assert result.exit_code == 0, result.output
    result = CliRunner().invoke(classify_main, [
        "--features", str(files[0]), "--features", str(files[1]), "--model", "logreg",
        "--outputs", str(outputs), "--jobs", "1", "--cv", "2"])
    assert result.exit_code == 0, result.output
    (model,) = (outputs / "models").iterdir()
    predictions = tmp_path / "predictions.csv"
    result = CliRunner().invoke(predict_main, [
        "--model", str(model), str(root), "--top", "3", "--output", str(predictions)])
    assert result.exit_code == 0, result.output
    assert "24 images labelled, 0 skipped" in result.output
    fused = fusion.read_fused(files)
    estimator = load_bundle(model).estimator
    expected = estimator.predict_proba(fused.X)
    rows = {row["path"]: row for row in csv.DictReader(predictions.open(encoding="utf-8"))}
    for relative, scores in zip(fused.paths, expected):
        row = rows[str(root / relative)]
        best = int(np.argmax(scores))
        assert row["class_1"] == f"class_{best}"
        assert float(row["score_1"]) == pytest.approx(scores[best], abs=1e-4)
