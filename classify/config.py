"""What one classify run is asked to do, as a typed value, and the checks made on it
before any data is read."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from classify.models import ModelSpec, model_parameters, searchable
from common.errors import UserError

RESULTS_FILE = "results.csv"
MODEL_STEP = "model"  # the model's step name in a pipeline behind a scaler


class ExperimentError(UserError, ValueError):
    """A configuration the experiment cannot run; the message names the option to change."""


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
        raise ExperimentError(f"--split {config.split}: choose given or random")
    for name in ("train_per_class", "test_per_class", "repeats"):
        value = getattr(config, name)
        if value is not None and value < 1:
            raise ExperimentError(f"--{name.replace('_', '-')} {value}: must be 1 or more")
    if config.test_per_class is not None and config.train_per_class is None:
        raise ExperimentError("--test-per-class goes with --train-per-class N; give both")


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
    """Refuse parameter names the model does not have, before any data is read."""
    known = model_parameters(spec)
    unknown = sorted(set(grid) - set(known))
    if unknown:
        raise ExperimentError(f"--grid: {spec.name} has no parameter {', '.join(unknown)}; "
                              f"valid: {searchable(spec)}")
