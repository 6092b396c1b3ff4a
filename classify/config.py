"""What one classify run is asked to do, as a typed value, and the checks made on it
before any data is read."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from classify.models import ModelSpec, model_parameters
from common.errors import UserError
from common.text import did_you_mean

RESULTS_FILE = "results.csv"
MODEL_STEP = "model"  # the model's step name in a pipeline behind a scaler


class ExperimentError(UserError, ValueError):
    """A configuration the experiment cannot run; the message names the option to change.

    `argument`, where one is at fault, is run()'s name for it (grid, scoring, ...), which
    the message starts with; the command line names its own option instead (`option`).
    """

    def __init__(self, detail: str, argument: str | None = None) -> None:
        super().__init__(f"{argument}: {detail}" if argument else detail)
        self.detail = detail
        self.argument = argument

    @property
    def option(self) -> str | None:
        """The command-line option of `argument`: grid -> --grid."""
        return f"--{self.argument.replace('_', '-')}" if self.argument else None


@dataclass(frozen=True)
class ExperimentConfig:
    """What one run does. `grid` names the model's own parameters; empty: fit the defaults.

    `features` is one feature file or several (fused, in that order), as paths or
    strings; it is kept as a tuple of Paths. `save=False` returns the result without
    writing the report, the model or the ledger row under `outputs`.
    """

    features: tuple[Path, ...]
    model: str = "logreg"
    grid: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    scoring: str = "accuracy"
    scale: bool = False
    test_size: float = 0.25
    cv: int = 3
    seed: int = 42
    jobs: int = -1
    cluster: str | None = None  # a Dask scheduler address or local:N
    outputs: Path = Path("outputs")
    progress: bool = True  # a progress bar for long fits, on a terminal only
    save: bool = True
    split: str | None = None  # given | random; None: the file's given split where it has one
    train_per_class: int | None = None  # the per-class protocol: N training images per class
    test_per_class: int | None = None  # and at most M test images of the others per class
    repeats: int = 1  # draws averaged (each with the next seed)

    def __post_init__(self) -> None:
        object.__setattr__(self, "features", feature_paths(self.features))
        check_protocol(self)


def check_protocol(config: ExperimentConfig) -> None:
    """Refuse protocol options that do not go together, before any data is read."""
    if config.split not in (None, "given", "random"):
        raise ExperimentError(f"{config.split!r}: choose 'given' or 'random'", "split")
    for name in ("train_per_class", "test_per_class", "repeats"):
        value = getattr(config, name)
        if value is not None and value < 1:
            raise ExperimentError(f"{value}: must be 1 or more", name)
    if config.test_per_class is not None and config.train_per_class is None:
        raise ExperimentError("goes with train_per_class; give both", "test_per_class")


def feature_paths(features: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]
                  ) -> tuple[Path, ...]:
    """One path, or a sequence of them, as a tuple of Paths: a string names one file
    (never one file per character)."""
    named = [features] if isinstance(features, (str, os.PathLike)) else features
    if not isinstance(named, Sequence):
        raise ExperimentError(f"features: expected a feature file's path or a sequence of "
                              f"them, not {type(features).__name__}")
    bad = [item for item in named if not isinstance(item, (str, os.PathLike))]
    if bad:
        raise ExperimentError(f"features: expected paths, not {type(bad[0]).__name__} "
                              f"({bad[0]!r})")
    if not named:
        raise ExperimentError("features: name at least one feature file")
    return tuple(Path(item) for item in named)


def check_grid(spec: ModelSpec, grid: Mapping[str, Sequence[Any]]) -> None:
    """Refuse parameter names the model does not have, and a parameter's values given
    as one value rather than a list, before any data is read. The command line's
    --grid is checked when parsed (classify.models.resolve_grid): this is run()'s check."""
    known = model_parameters(spec)
    unknown = sorted(set(grid) - set(known))
    if unknown:
        listed = ", ".join(repr(name) for name in unknown)
        raise ExperimentError(
            f"{spec.name} has no parameter {listed}; {did_you_mean(unknown[0], known)}its "
            f"default grid searches {', '.join(spec.default_grid)}, and any other parameter "
            "of the estimator can be given a list of values", "grid")
    for name, values in grid.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
            raise ExperimentError(f"{name!r} maps to {values!r}; give a list of values, e.g. "
                                  f"{{{name!r}: [{values!r}]}}", "grid")
