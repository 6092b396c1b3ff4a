"""The pieces that the local and the cluster backends share: what a fit hands to the
evaluation, the fit's announcement and its one-line failure, timings and warnings."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from classify import protocol
from classify.config import ExperimentConfig, ExperimentError
from classify.models import ModelSpec
from classify.report import records
from extract.featurefile import Extractor, Float64Note, Role


@dataclass
class Fitted:
    """What the local or cluster backend hands to the evaluation."""

    sources: list[records.FeatureSource]
    split: protocol.Split | protocol.LabelSplit
    paths: list[str]  # image path of every row of the file
    search: Any
    estimator: Any
    model_summary: str
    y_pred: np.ndarray
    top_probability: np.ndarray | None
    warnings: list[str]


@contextmanager
def float64_notes(announce: Callable[[str], None]) -> Iterator[None]:
    """Reading feature files inside: their float64 notes as `note:` lines, once each;
    any other warning goes on as it was."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", Float64Note)
        yield
    for note in sorted({str(w.message) for w in caught if issubclass(w.category, Float64Note)}):
        announce(f"note: {note}")
    for warning in caught:
        if not issubclass(warning.category, Float64Note):
            warnings.warn_explicit(warning.message, warning.category, warning.filename,
                                   warning.lineno)


@contextmanager
def timed(timings: dict[str, float], phase: str) -> Iterator[None]:
    """Seconds spent inside, recorded as `timings[phase]`."""
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[phase] = time.perf_counter() - start


@contextmanager
def recorded_warnings() -> Iterator[list[str]]:
    """The warnings raised inside, one line each (the report lists them): the list it
    yields holds them once the block is done."""
    lines: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", DeprecationWarning)  # library internals
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        yield lines
    lines += sorted({f"{w.category.__name__}: {str(w.message).splitlines()[0]}" for w in caught})


def chosen_protocol(config: ExperimentConfig) -> protocol.Protocol:
    """The protocol options of a run, as classify.protocol takes them."""
    return protocol.Protocol(config.split, config.train_per_class, config.test_per_class,
                             config.repeats)


def feature_source(path: Path, attrs: Mapping[str, Any], rows: int, dims: int, classes: int
                   ) -> records.FeatureSource:
    """What the records say of one feature file: its path, extractor and shape."""
    return records.FeatureSource(
        path=str(path), dataset_fingerprint=attrs.get("dataset_fingerprint"),
        extractor=Extractor.from_attrs(attrs).view(Role.BUNDLE),
        dataset_root=attrs.get("dataset_root"), rows=rows, dims=dims, classes=classes,
    )


def fit_failure(spec: ModelSpec, grid: Mapping[str, Any], exc: Exception) -> ExperimentError:
    """What the model refused while fitting, as the one-line error: a parameter value of
    the grid when there is one."""
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if grid:
        return ExperimentError(f"{spec.name} rejected a parameter value: {first_line}", "grid")
    return ExperimentError(f"{spec.name} could not be fitted on these features: {first_line}")


def fit_note(spec: ModelSpec, grid: Mapping[str, Sequence[Any]], n_splits: int, n_train: int,
             scoring: str) -> str:
    """The line announcing the fit: the search's size, or the single fit of the defaults."""
    if not grid:
        return f"fitting {spec.name} with its defaults on {n_train} images (no --grid: no search)"
    n_candidates = int(np.prod([len(v) for v in grid.values()]))
    if n_splits == 1:  # only a given split's val part makes one fold
        return (f"searching {n_candidates} candidate(s) of {spec.name}, validated on the "
                f"given val part ({scoring})")
    return (f"searching {n_candidates} candidate(s) x {n_splits} folds of {spec.name} "
            f"on the training part ({scoring})")
