"""A model bundle trained here, and `predict` run on it as the tests run it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from classify.cli import main as classify_main
from extract.cli import main as extract_main
from predict.cli import main as predict_main
from tests.helpers.imagefolders import make_folder

SIZE = "32"


def train_bundle(tmp: Path) -> tuple[Path, Path, Path]:
    """Class folders -> extract (random weights) -> classify logreg -> a model bundle.

    Returns the image folder, the bundle and `tmp`, which holds both.
    """
    root = make_folder(tmp / "photos", classes=3, per_class=8, ext="png")
    outputs = tmp / "outputs"
    features = outputs / "features" / "photos-vgg16-avg.h5"
    result = CliRunner().invoke(extract_main, [
        "--dataset", str(root), "--backbone", "vgg16", "--pooling", "avg", "--weights",
        "random", "--image-size", SIZE, "--output", str(features)])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(classify_main, [
        "--features", str(features), "--model", "logreg", "--outputs", str(outputs),
        "--jobs", "1", "--cv", "2"])
    assert result.exit_code == 0, result.output
    (model,) = (outputs / "models").iterdir()
    return root, model, tmp


def run_predict(*args: Any) -> Result:
    """`predict ARGS` in this process (paths become strings)."""
    return CliRunner().invoke(predict_main, [str(a) for a in args])


def copy_with_metadata(model: Path, target: Path, change: Callable[[dict], None]) -> Path:
    """The bundle `model` copied to `target`, its bundle.json passed through `change`."""
    shutil.copytree(model, target)
    metadata = json.loads((target / "bundle.json").read_text())
    change(metadata)
    (target / "bundle.json").write_text(json.dumps(metadata))
    return target
