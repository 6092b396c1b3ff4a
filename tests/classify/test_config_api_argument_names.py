"""Finding 13j of the second new-user pass: run() called from a notebook names its own
arguments (grid, scoring, repeats), not the command line's options; the command line
still names --grid."""

from __future__ import annotations

from pathlib import Path

import pytest

from classify.config import ExperimentConfig, ExperimentError
from classify.experiment import run as run_experiment
from tests.helpers.classifying import assert_one_line_error, run


@pytest.mark.parametrize(("grid", "message"), [
    ({"C": "abc"}, "grid: 'C' maps to 'abc'; give a list of values, e.g. {'C': ['abc']}"),
    ({"C": ["abc"]}, "grid: logreg rejected a parameter value"),
    ({"gamma": [1]}, "grid: logreg has no parameter 'gamma'; its default grid searches C"),
])
def test_a_bad_grid_names_the_grid_argument(feature_file: Path, grid: dict,
                                            message: str) -> None:
    config = ExperimentConfig(features=feature_file, grid=grid, jobs=1, save=False)
    with pytest.raises(ExperimentError) as caught:
        run_experiment(config)
    assert str(caught.value).startswith(message), caught.value
    assert "--" not in str(caught.value)


@pytest.mark.parametrize(("options", "message"), [
    ({"scoring": "f2"}, "scoring: 'f2': choose one of"),
    ({"repeats": 0}, "repeats: 0: must be 1 or more"),
    ({"split": "half"}, "split: 'half': choose 'given' or 'random'"),
    ({"test_per_class": 3}, "test_per_class: goes with train_per_class; give both"),
])
def test_other_bad_arguments_name_the_argument(feature_file: Path, options: dict,
                                               message: str) -> None:
    with pytest.raises(ExperimentError) as caught:
        run_experiment(ExperimentConfig(features=feature_file, jobs=1, save=False, **options))
    assert str(caught.value).startswith(message), caught.value


def test_the_command_line_still_names_grid(feature_file: Path, outputs: Path) -> None:
    result = run(outputs, "--features", str(feature_file), "--jobs", "1",
                 "--grid", "C=-1")
    assert_one_line_error(result, "Error: --grid: logreg rejected a parameter value")
