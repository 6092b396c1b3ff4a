"""Ctrl-C during `predict`: one `interrupted:` line saying what was kept, exit 130 (not
click's `Aborted!` and 1), and a --output CSV that is whole or as it was."""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import predict.cli
from predict.predicting import Prediction
from tests.helpers.bundles import run_predict
from tests.helpers.imagefolders import make_folder


def stopped(*args: Any, **kwargs: Any) -> None:
    raise KeyboardInterrupt


@pytest.fixture
def model_and_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A model folder (its loading stubbed out) and a folder of two images."""
    model = tmp_path / "outputs" / "models" / "run"
    model.mkdir(parents=True)
    (model / "bundle.json").write_text("{}")
    monkeypatch.setattr(predict.cli, "load_bundle",
                        lambda *args, **kwargs: SimpleNamespace(label_names=["a", "b"]))
    monkeypatch.setattr(predict.cli, "predict", stopped)
    return model, make_folder(tmp_path / "photos", classes=1, per_class=2)


def test_ctrl_c_without_output_says_nothing_was_written(
        model_and_images: tuple[Path, Path]) -> None:
    model, images = model_and_images
    result = run_predict("--model", model, images)
    assert result.exit_code == 130, result.output
    assert result.stderr == "interrupted: nothing was written; run the same command again\n"


def test_ctrl_c_keeps_an_earlier_output_csv_as_it_was(
        model_and_images: tuple[Path, Path], tmp_path: Path) -> None:
    model, images = model_and_images
    output = tmp_path / "labels.csv"
    output.write_text("the earlier predictions\n")
    long_ago = time.time() - 3600
    os.utime(output, (long_ago, long_ago))
    result = run_predict("--model", model, images, "--output", output)
    assert result.exit_code == 130, result.output
    assert result.stderr == (f"interrupted: {output} is as it was; run the same command "
                             "again\n")
    assert output.read_text() == "the earlier predictions\n"


def test_a_csv_interrupted_while_written_leaves_the_earlier_one(tmp_path: Path) -> None:
    output = tmp_path / "labels.csv"
    output.write_text("the earlier predictions\n")

    def rows_then_ctrl_c():
        yield Prediction("x.jpg", ["a"], [0.9], "probability")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        predict.cli.write_csv(output, rows_then_ctrl_c(), 1)
    assert output.read_text() == "the earlier predictions\n"
    assert [p.name for p in tmp_path.iterdir()] == ["labels.csv"]
