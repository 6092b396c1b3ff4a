"""`predict` with a model trained on a model file's features, alone or fused with a
built-in backbone's: it rebuilds the extractor from the file at the recorded path or
given with --backbone-file, and refuses any other file in one line."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from classify import fusion
from classify.bundles import load_bundle
from classify.cli import main as classify_main
from extract.cli import main as extract_main
from tests.helpers import onnx_models
from tests.helpers.bundles import run_predict
from tests.helpers.classifying import assert_one_line_error
from tests.helpers.imagefolders import make_folder


def _run(command, *args: object) -> None:
    result = CliRunner().invoke(command, [str(a) for a in args])
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def fused(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, list[Path]]:
    """(photos, conv.onnx, a logreg bundle on its features fused with vgg16's, the two
    feature files)."""
    tmp = tmp_path_factory.mktemp("own")
    root = make_folder(tmp / "photos", classes=3, per_class=6, ext="png")
    (tmp / "models").mkdir()
    model = onnx_models.conv_model(tmp / "models" / "conv.onnx")
    outputs = tmp / "outputs"
    own, vgg = outputs / "features" / "own.h5", outputs / "features" / "vgg.h5"
    _run(extract_main, "--dataset", root, "--backbone", model, "--preprocess", "unit",
         "--image-size", 16, "--output", own)
    _run(extract_main, "--dataset", root, "--backbone", "vgg16", "--weights", "random",
         "--image-size", 32, "--pooling", "avg", "--output", vgg)
    _run(classify_main, "--features", own, "--features", vgg, "--model", "logreg",
         "--outputs", outputs, "--jobs", "1", "--cv", "2")
    (bundle,) = (outputs / "models").iterdir()
    return root, model, bundle, [own, vgg]


def test_a_fused_model_gets_its_training_features_back(fused, tmp_path):
    root, _, bundle, files = fused
    predictions = tmp_path / "predictions.csv"
    result = run_predict("--model", bundle, root, "--output", predictions)
    assert result.exit_code == 0, result.output
    assert "18 images labelled, 0 skipped" in result.output
    joined = fusion.read_fused(files)
    expected = load_bundle(bundle).estimator.predict_proba(joined.X)
    rows = {row["path"]: row for row in csv.DictReader(predictions.open(encoding="utf-8"))}
    for relative, scores in zip(joined.paths, expected):
        assert float(rows[str(root / relative)]["score_1"]) == pytest.approx(scores.max(),
                                                                             abs=1e-4)


def test_a_moved_file_is_found_with_backbone_file(fused, tmp_path):
    root, model, bundle, _ = fused
    moved = tmp_path / "elsewhere.onnx"
    shutil.move(model, moved)
    try:
        missing = run_predict("--model", bundle, root / "class_0")
        assert_one_line_error(missing, f"the model's features came from {model}, which is not "
                                       "there; pass that file with --backbone-file PATH")
        given = run_predict("--model", bundle, root / "class_0", "--backbone-file", moved)
        assert given.exit_code == 0, given.output
        assert "6 images labelled" in given.output
    finally:
        shutil.move(moved, model)


def test_another_file_is_refused_in_one_line(fused, tmp_path):
    root, model, bundle, _ = fused
    other = onnx_models.conv_model(tmp_path / "other.onnx", size=16)
    result = run_predict("--model", bundle, root / "class_0", "--backbone-file", other)
    assert_one_line_error(result, f"--backbone-file {other}: sha256:")
    assert "is not a file this model's features came from (conv.onnx (sha256:" in result.output
    original = model.read_bytes()
    try:
        shutil.copy(other, model)  # another file at the recorded path
        changed = run_predict("--model", bundle, root / "class_0")
        assert_one_line_error(changed, "the model's features came from (the file changed); "
                                       "pass the file they came from with --backbone-file PATH")
    finally:
        model.write_bytes(original)


def test_rows_are_rebuilt_at_the_recorded_settings(fused):
    """The library: the model file's extractor gives the file's own rows."""
    from predict.predicting import feature_rows, model_files

    root, _, bundle, files = fused
    extractor = load_bundle(bundle).extractors[0]
    (where,) = model_files([extractor], [])
    images = sorted(root.rglob("*.png"))
    rows = np.stack([row for _, row in feature_rows(images, extractor,
                                                    extractor["weights"], 4, model_path=where)])
    own = fusion.read_fused(files[:1])
    by_path = dict(zip(own.paths, own.X))
    expected = np.stack([by_path[str(image.relative_to(root))] for image in images])
    np.testing.assert_allclose(rows, expected, rtol=1e-6, atol=1e-6)


def test_the_report_names_the_model_file_and_its_output(fused):
    _, model, bundle, _ = fused
    (page,) = (bundle.parent.parent / "reports").glob("*/index.html")
    html = page.read_text(encoding="utf-8")
    assert "<th>model file</th>" in html and f"<td>{model}</td>" in html
    assert "<th>model output</th>" in html and "<td>map</td>" in html
