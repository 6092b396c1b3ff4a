"""`predict` on data laid out in split folders: a model trained on ds/train reports
against the class folders of ds/test, of ds itself, and says when images trained it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from classify.cli import main as classify
from tests.helpers.bundles import run_predict
from tests.helpers.extracting import extract_small
from tests.helpers.layouts import flowers, split_folders


@pytest.fixture(scope="module")
def split_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """ds/train/<class>/ and ds/test/<class>/ of real photos, extracted and classified."""
    tmp = tmp_path_factory.mktemp("split-model")
    root = split_folders(tmp / "ds", flowers(2, 8), {"train": 5, "test": 3})
    features = tmp / "outputs" / "features" / "ds.h5"
    assert extract_small(root, features).exit_code == 0
    result = CliRunner().invoke(classify, ["--features", str(features), "--outputs",
                                           str(tmp / "outputs"), "--jobs", "1"])
    assert result.exit_code == 0, result.output
    (model,) = (tmp / "outputs" / "models").iterdir()
    return root, model


def test_the_test_folder_is_reported_against_its_class_folders(
        split_model: tuple[Path, Path]) -> None:
    root, model = split_model
    result = run_predict("--model", model, root / "test")
    assert result.exit_code == 0, result.output
    assert "against the class folders (6 images):" in result.output
    assert "overstates" not in result.output  # held out: no note


def test_the_train_folder_is_reported_with_a_note_that_it_trained_the_model(
        split_model: tuple[Path, Path]) -> None:
    root, model = split_model
    result = run_predict("--model", model, root / "train")
    assert result.exit_code == 0, result.output
    assert f"note: {root / 'train'} is the train split of the images this model was made " \
           "from: they trained it" in result.output
    assert "against the class folders (10 images):" in result.output


def test_the_split_root_is_reported_against_the_class_folders_below_its_splits(
        split_model: tuple[Path, Path]) -> None:
    root, model = split_model
    result = run_predict("--model", model, root)
    assert result.exit_code == 0, result.output
    assert "not classes of this model" not in result.output
    assert "against the class folders (16 images):" in result.output
    assert f"note: {root} holds the images this model was made from" in result.output
