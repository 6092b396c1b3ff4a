"""Issue 26, item 1: `make classify` searches the model's own default grid, and a wrong
`--grid` name lists the model's searchable parameters, not every constructor argument."""

from __future__ import annotations

import dataclasses
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from classify import models
from classify.models import MODELS, model_parameters, resolve_grid
from tests.helpers.classifying import assert_one_line_error, run

REPO = Path(__file__).resolve().parents[2]


def make_classify(*variables: str) -> list[str]:
    """The classify arguments `make classify VARIABLES` runs (a dry run: nothing runs)."""
    venv = Path(sys.executable).parent.parent
    dry = subprocess.run(
        ["make", "-s", "-n", "-o", f"{venv}/.installed", f"VENV={venv}", "classify",
         *variables],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout
    words = shlex.split(dry.replace("\\\n", " "))
    return words[words.index(f"{venv}/bin/classify") + 1:]


def test_make_classify_with_xgb_searches_the_xgb_default_grid(
    feature_file: Path, outputs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's `make classify DATASET=... BACKBONE=... MODEL=xgb`, on a toy file."""
    args = make_classify("DATASET=toy", "BACKBONE=vgg16", "MODEL=xgb")
    assert "--grid" in args, args
    # xgb's own grid, cut to two quick candidates: the wiring is what is tested here.
    small = dataclasses.replace(MODELS["xgb"], default_grid={"n_estimators": (5,),
                                                             "max_depth": (2, 3)})
    monkeypatch.setitem(models.MODELS, "xgb", small)
    result = run(outputs, *args, "--jobs", "1")
    assert result.exit_code == 0, result.output
    assert "searching 2 candidate(s) x 3 folds of xgb" in result.output
    assert "max_depth=2, n_estimators=5" in result.output


def test_make_classify_gives_no_grid_when_grid_is_empty() -> None:
    assert "--grid" not in make_classify("GRID=")
    assert make_classify("GRID=max_depth=3,6 n_estimators")[-4:] == [
        "--grid", "max_depth=3,6", "--grid", "n_estimators"]


@pytest.mark.parametrize("name", list(MODELS))
def test_grid_default_is_the_listed_default_grid(name: str) -> None:
    spec = MODELS[name]
    grid = resolve_grid(spec, ["default"], model_parameters(spec))
    assert grid == {param: list(values) for param, values in spec.default_grid.items()}


def test_a_parameter_named_beside_default_keeps_its_values() -> None:
    spec = MODELS["xgb"]
    grid = resolve_grid(spec, ["default", "max_depth=4"], model_parameters(spec))
    assert list(grid) == list(spec.default_grid) and grid["max_depth"] == [4]


def test_a_wrong_grid_name_lists_the_searchable_parameters(feature_file: Path,
                                                           outputs: Path) -> None:
    result = run(outputs, "--model", "xgb", "--grid", "C")
    assert result.exit_code == 2
    assert_one_line_error(result, "Invalid value for '--grid': xgb has no parameter 'C'; valid: "
                          "n_estimators, max_depth, learning_rate, subsample (its default "
                          "grid, classify --list-models; --grid default searches all of them)")
    assert "base_score" not in result.output  # a constructor argument, not in the grid


def test_a_misspelt_grid_name_gets_a_suggestion(feature_file: Path, outputs: Path) -> None:
    result = run(outputs, "--model", "xgb", "--grid", "max_dept=3")
    assert_one_line_error(result, "xgb has no parameter 'max_dept'; did you mean max_depth")


def test_list_models_names_grid_default(outputs: Path) -> None:
    result = run(outputs, "--list-models")
    assert result.exit_code == 0
    assert "--grid default searches a model's whole grid above" in result.output
