"""The three records a run writes, each one typed: metrics, model bundle, ledger row.

Metrics go to metrics.json (and feed report.txt and the HTML report), the bundle's
metadata to the model folder's bundle.json, the ledger row to outputs/results.csv.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

BUNDLE_FORMAT_VERSION = 2


@dataclass(frozen=True)
class FeatureSource:
    """One feature file a run read."""

    path: str
    dataset_fingerprint: str | None
    extractor: dict[str, Any]  # what predict needs: Extractor.view(Role.BUNDLE)
    dataset_root: str | None  # where its images are (the HTML report's thumbnails)
    rows: int
    dims: int
    classes: int


@dataclass(frozen=True)
class Candidate:
    """One row of the search's candidates table."""

    params: dict[str, Any]
    mean_score: float
    std_score: float
    rank: int
    mean_log_loss: float | None  # mean validation log-loss (models with probabilities)
    mean_fit_seconds: float


@dataclass(frozen=True)
class TestPrediction:
    """One test image: what it is, what the model said, how sure it was."""

    path: str
    true_class: str
    predicted_class: str
    top_probability: float | None  # None for models without probabilities


@dataclass(frozen=True)
class ProtocolRecord:
    """Which rows trained and which tested: the protocol that ran."""

    kind: str  # random | given | per_class
    text: str  # how, in words: "stratified, test size 0.25, seed 42"
    split_source: str = ""  # given: folders, or the label file's name
    n_val: int = 0  # given: the val part (in n_train), the search's one validation fold
    train_per_class: int | None = None
    test_per_class: int | None = None
    repeats: int = 1


@dataclass(frozen=True)
class Draw:
    """One draw of the rows (--repeats): its seed and its test figures."""

    seed: int
    n_train: int
    n_test: int
    accuracy: float
    balanced_accuracy: float


@dataclass
class Metrics:
    """Everything a run measured (metrics.json)."""

    created: str
    features: list[FeatureSource]
    model: str
    model_summary: str
    scale: bool
    cluster: str | None
    scoring: str
    test_size: float
    seed: int
    cv: int
    cv_used: int | None
    jobs: int
    n_train: int
    n_test: int
    dropped_classes: list[str]
    grid: dict[str, list[Any]]
    best_params: dict[str, Any]
    cv_score: float | None
    tie_break: str | None
    candidates: list[Candidate]
    accuracy: float
    macro_f1: float
    summary: dict[str, float]  # accuracy, macro and weighted precision/recall/F1
    per_class: dict[str, dict[str, float]]
    confusion_labels: list[str]
    confusion_matrix: list[list[int]]
    test_predictions: list[TestPrediction]
    warnings: list[str]
    timings: dict[str, float]
    report_dir: str
    model_dir: str
    balanced_accuracy: float | None = None  # mean per-class recall on the test part
    protocol: ProtocolRecord | None = None
    draws: list[Draw] = field(default_factory=list)  # --repeats: every draw, this run's first
    balanced_accuracy_mean: float | None = None  # over the draws, where there are several
    balanced_accuracy_std: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ModelBundle:
    """A saved model: the estimator (saved apart: skops or XGBoost JSON) and its metadata."""

    model: str
    estimator: Any
    label_names: list[str]
    params: dict[str, Any]
    scale: bool
    extractors: list[dict[str, Any]]  # one per features file, in the order concatenated
    features: list[str]
    dataset_fingerprints: list[str | None]
    metrics: dict[str, float | None]
    created: str
    versions: dict[str, str]
    format_version: int = BUNDLE_FORMAT_VERSION

    def metadata(self) -> dict[str, Any]:
        """Everything but the estimator, for bundle.json."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "estimator"}


@dataclass(frozen=True)
class LedgerRow:
    """One run in outputs/results.csv."""

    time: str
    features: str
    backbone: str
    pooling: str
    weights: str
    model: str
    params: dict[str, Any]
    accuracy: float
    macro_f1: float
    seconds: float
    report: str = field(default="")
    protocol: str = field(default="")  # how the rows were split (classify.report.text)
    # --repeats: the accuracy over the draws (`accuracy` is the first draw's, the saved model's)
    accuracy_mean: float | None = None
    accuracy_std: float | None = None


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, default=_jsonable) + "\n", encoding="utf-8")


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def library_versions() -> dict[str, str]:
    """Versions that decide whether a saved estimator loads and behaves the same."""
    versions = {}
    for name in ("scikit-learn", "numpy", "joblib", "xgboost"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return versions
