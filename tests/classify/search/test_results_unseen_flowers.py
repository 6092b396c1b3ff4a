"""Real photos: four flowers17 classes, where every C from 0.001 up scores 1.0. The
tie-break must choose a model sure of its own classes' photos yet not of flowers it was
never shown (the best log-loss alone chose C=1000, "pretty sure" of 14 of these 30)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from extract.cli import main as extract_main
from extract.datasets import FLOWERS17_CLASSES, FLOWERS17_PER_CLASS
from predict.cli import main as predict_main
from tests.helpers.classifying import only, run
from tests.helpers.imagefolders import FLOWERS17_JPG

TRAINED = ("daffodil", "sunflower", "daisy", "pansy")
UNSEEN = ("tulip", "snowdrop", "iris")


def link_photos(root: Path, names: tuple[str, ...], skip: int, count: int) -> Path:
    """root/<class>/ with `count` of the class's photos, after its first `skip`."""
    for name in names:
        first = FLOWERS17_CLASSES.index(name) * FLOWERS17_PER_CLASS + 1 + skip
        (root / name).mkdir(parents=True)
        for number in range(first, first + count):
            (root / name / f"image_{number:04d}.jpg").symlink_to(
                FLOWERS17_JPG / f"image_{number:04d}.jpg")
    return root


@pytest.mark.skipif(not FLOWERS17_JPG.is_dir(), reason=f"flowers17 photos not at {FLOWERS17_JPG}")
def test_the_tie_break_gives_a_model_unsure_of_flowers_it_never_saw(tmp_path: Path) -> None:
    photos = link_photos(tmp_path / "photos", TRAINED, 0, 30)
    unseen = link_photos(tmp_path / "unseen", UNSEEN, 30, 10)
    features = tmp_path / "flowers.h5"
    extracted = CliRunner().invoke(extract_main, ["--dataset", str(photos), "--backbone",
                                                  "efficientnet_lite0", "--output", str(features)])
    assert extracted.exit_code == 0, extracted.output
    outputs = tmp_path / "outputs"
    classified = run(outputs, "--features", str(features), "--grid", "C", "--jobs", "1")
    assert classified.exit_code == 0, classified.output
    assert "tie-break   " in classified.output and "grid edge" not in classified.output
    metrics = json.loads((only(outputs / "reports") / "metrics.json").read_text())
    top = [p["top_probability"] for p in metrics["test_predictions"]]
    assert np.median(top) >= 0.9, classified.output

    predicted = CliRunner().invoke(predict_main, ["--model", str(only(outputs / "models")),
                                                  "--top", "1", str(unseen)])
    assert predicted.exit_code == 0, predicted.output
    lines = [line for line in predicted.output.splitlines() if line.startswith(str(unseen))]
    assert len(lines) == 30
    sure = [line for line in lines if line.endswith("(pretty sure)")]
    assert len(sure) <= len(lines) // 4, predicted.output
