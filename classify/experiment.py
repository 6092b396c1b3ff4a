"""One classify experiment, without the command line: split, search, refit, evaluate, save.

    from pathlib import Path
    from classify.experiment import ExperimentConfig, run
    result = run(ExperimentConfig(features=(Path("outputs/features/x.h5"),),
                                  model="logreg", grid={"C": [0.01, 0.1, 1]}))
    result.metrics.accuracy, result.search.cv_results_, result.estimator

The split depends only on the labels, the seed and the test size, so every model and
backbone on a dataset is scored on the same held-out images; the search sees only the
training part; the chosen model is refitted on all of it and scored once on the test
part.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from classify import fusion, html_report, protocol, records, reports
from classify.ledger import append_row
from classify.models import ModelSpec, get_model, model_parameters
from extract.store import Features, Float64Note

RESULTS_FILE = "results.csv"
MODEL_STEP = "model"


class ExperimentError(ValueError):
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


@dataclass(frozen=True)
class SavedFiles:
    report_dir: Path
    model_dir: Path
    ledger: Path
    report_page: Path  # the run's HTML page (outputs/index.html lists every run)


@dataclass
class ExperimentResult:
    metrics: records.Metrics
    report: str  # report.txt, as printed
    search: Any  # the fitted search estimator; None without a grid
    estimator: Any  # the refitted model that was saved
    files: SavedFiles


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


def load_features(paths: Sequence[Path], announce: Callable[[str], None]) -> Features:
    """The features of a run: one file, or several fused (classify.fusion)."""
    from classify.fusion import read_fused

    with float64_notes(announce):
        return read_fused(paths)


@contextmanager
def timed(timings: dict[str, float], phase: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[phase] = time.perf_counter() - start


def feature_source(path: Path, attrs: Mapping[str, Any], rows: int, dims: int, classes: int
            ) -> records.FeatureSource:
    return records.FeatureSource(
        path=str(path), dataset_fingerprint=attrs.get("dataset_fingerprint"),
        extractor={key: attrs.get(key) for key in records.EXTRACTOR_KEYS},
        dataset_root=attrs.get("dataset_root"), rows=rows, dims=dims, classes=classes,
    )  # fmt: skip


def _estimator(spec: ModelSpec, scale: bool, seed: int, jobs: int) -> Any:
    """The model, behind a scaler fitted per fold when asked."""
    model = spec.build(seed, jobs)
    if not scale:
        return model
    from sklearn.pipeline import Pipeline

    from classify.scaling import BlockwiseStandardScaler

    return Pipeline([("scale", BlockwiseStandardScaler()), (MODEL_STEP, model)])


def fit_failure(spec: ModelSpec, grid: Mapping[str, Any], exc: Exception) -> ExperimentError:
    """What the model refused while fitting, as the one-line error: a parameter value of
    the grid when there is one."""
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if grid:
        return ExperimentError(f"--grid: {spec.name} rejected a parameter value: {first_line}")
    return ExperimentError(f"{spec.name} could not be fitted on these features: {first_line}")


def check_grid(spec: ModelSpec, grid: Mapping[str, Sequence[Any]]) -> None:
    """Refuse parameter names the model does not have, before any data is read."""
    known = model_parameters(spec)
    unknown = sorted(set(grid) - set(known))
    if unknown:
        raise ExperimentError(f"--grid: {spec.name} has no parameter {', '.join(unknown)}; "
                              f"valid: {', '.join(sorted(known, key=str.lower))}")


@dataclass
class Fitted:
    """What the local or cluster path hands to the evaluation."""

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


def fit_note(spec: ModelSpec, grid: Mapping[str, Sequence[Any]], n_splits: int, n_train: int,
             scoring: str) -> str:
    """The line announcing the fit: the search's size, or the single fit of the defaults."""
    if not grid:
        return f"fitting {spec.name} with its defaults on {n_train} images (no --grid: no search)"
    n_candidates = int(np.prod([len(v) for v in grid.values()]))
    return (f"searching {n_candidates} candidate(s) x {n_splits} folds of {spec.name} "
            f"on the training part ({scoring})")


def _run_local(config: ExperimentConfig, spec: ModelSpec, timings: dict[str, float],
               announce: Callable[[str], None], scratch: Path) -> Fitted:
    from classify.fit_progress import fit_with_progress
    from classify.search import make_search

    with timed(timings, "load"):
        features = load_features(config.features, announce)
        sources = [feature_source(Path(path), attrs, len(features.y), int(attrs["feature_dim"]),
                                  len(features.label_names))
                   for path, attrs in zip(config.features, fusion.extractors(features.attrs))]
        split = protocol.split_features(features, config.test_size, config.seed, announce,
                                        scratch)
    announce(f"loaded {features.path} in {timings['load']:.2f} s")
    grid = dict(config.grid)
    search = None
    if grid:
        n_splits = protocol.fold_count(split, config.cv, announce)
        base = _estimator(spec, config.scale, config.seed, 1)
        search_grid = ({f"{MODEL_STEP}__{k}": v for k, v in grid.items()} if config.scale
                       else grid)
        search = make_search(base, search_grid, scoring=config.scoring,
                             cv=protocol.folds(n_splits, config.seed), n_jobs=config.jobs,
                             progress=config.progress)
        model: Any = search
    else:
        n_splits = 0
        estimator = _estimator(spec, config.scale, config.seed, config.jobs)
        model = estimator
    announce(fit_note(spec, grid, n_splits, len(split.y_train), config.scoring))
    with timed(timings, "search" if grid else "fit"), recorded_warnings() as caught:
        try:
            fit_with_progress(model, split.X_train, split.y_train, config.progress)
        except (ValueError, TypeError) as exc:
            raise fit_failure(spec, grid, exc) from None
    if search is not None:
        estimator = search.best_estimator_
    with timed(timings, "test"):
        y_pred = np.asarray(estimator.predict(split.X_test))
        top = (estimator.predict_proba(split.X_test).max(axis=1)
               if hasattr(estimator, "predict_proba") else None)
    return Fitted(sources, split, features.paths, search, estimator, spec.summary, y_pred,
                   top, caught)


def _candidates(search: Any, strip: str) -> list[records.Candidate]:
    if search is None:
        return []
    results = search.cv_results_
    losses = results.get("mean_test_neg_log_loss")
    return [
        records.Candidate(
            params={k.removeprefix(strip): v for k, v in params.items()},
            mean_score=float(results["mean_test_score"][i]),
            std_score=float(results["std_test_score"][i]),
            rank=int(results["rank_test_score"][i]),
            mean_log_loss=None if losses is None else -float(losses[i]),
            mean_fit_seconds=float(results["mean_fit_time"][i]),
        )
        for i, params in enumerate(results["params"])
    ]


def run(config: ExperimentConfig, announce: Callable[[str], None] = print) -> ExperimentResult:
    """The whole experiment; notes go to `announce`, the result comes back and is saved."""
    from classify.search import SCORINGS

    spec = get_model(config.model)
    if config.scoring not in SCORINGS:
        raise ExperimentError(f"--scoring {config.scoring}: choose one of {', '.join(SCORINGS)}")
    check_grid(spec, config.grid)
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="classify-") as scratch:
        # The scratch folder holds the training part as a file the search workers map
        # (TMPDIR decides where); it lives until the model is saved.
        if config.cluster is None:
            fitted = _run_local(config, spec, timings, announce, Path(scratch))
        else:
            from classify import cluster

            fitted = cluster.run(config, spec, timings, announce)
        return _evaluate_and_save(config, spec, fitted, timings)


def _evaluate_and_save(config: ExperimentConfig, spec: ModelSpec, fitted: Fitted,
                       timings: dict[str, float]) -> ExperimentResult:
    split, search = fitted.split, fitted.search
    names = split.label_names
    evaluation = reports.evaluate(split.y_test, fitted.y_pred, names)
    outputs = config.outputs
    stem = "+".join(Path(source.path).stem for source in fitted.sources)  # fused: every file
    name = reports.run_name(outputs, stem, spec.name)
    strip = f"{MODEL_STEP}__" if config.scale else ""
    best_params = ({k.removeprefix(strip): v for k, v in search.best_params_.items()}
                   if search is not None else {})
    test_predictions = [
        records.TestPrediction(
            path=fitted.paths[row], true_class=names[truth], predicted_class=names[guess],
            top_probability=None if fitted.top_probability is None
            else float(fitted.top_probability[i]),
        )
        for i, (row, truth, guess) in enumerate(zip(split.test_rows, split.y_test, fitted.y_pred))
    ]  # fmt: skip
    metrics = records.Metrics(
        created=dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        features=fitted.sources, model=spec.name, model_summary=fitted.model_summary,
        scale=config.scale, cluster=config.cluster, scoring=config.scoring,
        test_size=config.test_size, seed=config.seed, cv=config.cv,
        cv_used=None if search is None else search.n_splits_, jobs=config.jobs,
        n_train=len(split.train_rows), n_test=len(split.test_rows),
        dropped_classes=split.dropped, grid={k: list(v) for k, v in config.grid.items()},
        best_params=best_params,
        cv_score=None if search is None else float(search.best_score_),
        tie_break=None if search is None else search.tie_break_,
        candidates=_candidates(search, strip),
        accuracy=evaluation.accuracy, macro_f1=evaluation.macro_f1,
        summary=evaluation.summary(), per_class=evaluation.per_class(),
        confusion_labels=[names[i] for i in evaluation.labels],
        confusion_matrix=evaluation.confusion.tolist(), test_predictions=test_predictions,
        warnings=fitted.warnings, timings=timings,
        report_dir=str(outputs / "reports" / name), model_dir=str(outputs / "models" / name),
    )  # fmt: skip
    text = reports.format_report(metrics, evaluation.text)
    bundle = records.ModelBundle(
        model=spec.name, estimator=fitted.estimator, label_names=names, params=best_params,
        scale=config.scale, extractors=[s.extractor for s in fitted.sources],
        features=[s.path for s in fitted.sources],
        dataset_fingerprints=[s.dataset_fingerprint for s in fitted.sources],
        metrics={"accuracy": metrics.accuracy, "macro_f1": metrics.macro_f1,
                 "cv_score": metrics.cv_score},
        created=metrics.created, versions=reports.library_versions(),
    )  # fmt: skip
    files = SavedFiles(Path(metrics.report_dir), Path(metrics.model_dir),
                       outputs / RESULTS_FILE, Path(metrics.report_dir) / html_report.PAGE)
    with timed(timings, "save"):
        reports.save_run(metrics, text, evaluation, bundle)
    reports.write_json(files.report_dir / "metrics.json", metrics.to_dict())
    append_row(files.ledger, reports.ledger_row(metrics))
    _write_html(metrics, split, fitted, outputs)
    return ExperimentResult(metrics, text, search, fitted.estimator, files)


def _write_html(metrics: records.Metrics, split: Any, fitted: Fitted, outputs: Path) -> None:
    """The run's HTML page and outputs/index.html, from the values the run produced."""
    root = fitted.sources[0].dataset_root
    html_report.write_run_report(
        Path(metrics.report_dir),
        title=f"{Path(metrics.features[0].path).stem} / {metrics.model}",
        settings={
            "features": " + ".join(s.path for s in metrics.features),
            "extractors": [s.extractor for s in metrics.features],
            "model": f"{metrics.model}: {metrics.model_summary}"
                     + (" on standardised features" if metrics.scale else ""),
            # Shown only where they apply: an empty row says nothing.
            **({"cluster": metrics.cluster} if metrics.cluster else {}),
            "scoring": metrics.scoring,
            "protocol": {"test_size": metrics.test_size, "seed": metrics.seed,
                         "cv": metrics.cv_used, "n_train": metrics.n_train,
                         "n_test": metrics.n_test},
            "grid": metrics.grid, "best_params": metrics.best_params,
            "cv_score": metrics.cv_score,
            **({"tie_break": metrics.tie_break} if metrics.tie_break else {}),
            "created": metrics.created,
            "timings": {phase: f"{seconds:.2f} s" for phase, seconds in metrics.timings.items()},
        },
        label_names=split.label_names, y_true=split.y_test, y_pred=fitted.y_pred,
        confidence=fitted.top_probability,
        test_paths=[fitted.paths[row] for row in split.test_rows],
        image_root=Path(root) if root else None, index_page=outputs / html_report.PAGE,
    )  # fmt: skip
    html_report.write_index(outputs, RESULTS_FILE)
