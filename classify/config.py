"""What one classify run is asked to do, as a typed value, and the checks made on it
before any data is read."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from classify.models import ModelSpec, model_parameters
from common.errors import UserError

RESULTS_FILE = "results.csv"
MODEL_STEP = "model"  # the model's step name in a pipeline behind a scaler


class ExperimentError(UserError, ValueError):
    """A configuration the experiment cannot run; the message names the option to change."""


@dataclass(frozen=True)
class ExperimentConfig:
    """What one run does. `grid` names the model's own parameters; empty: fit the defaults."""

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
    progress: bool = True


def check_grid(spec: ModelSpec, grid: Mapping[str, Sequence[Any]]) -> None:
    """Refuse parameter names the model does not have, before any data is read."""
    known = model_parameters(spec)
    unknown = sorted(set(grid) - set(known))
    if unknown:
        raise ExperimentError(f"--grid: {spec.name} has no parameter {', '.join(unknown)}; "
                              f"valid: {', '.join(sorted(known, key=str.lower))}")
