"""One classify experiment, without the command line: split, search, refit, evaluate, save.

    from classify.experiment import ExperimentConfig, run
    result = run(ExperimentConfig(features="outputs/features/x.h5", model="logreg",
                                  grid={"C": [0.01, 0.1, 1]}), announce=print)
    result.metrics.accuracy, result.search.cv_results_, result.estimator

The split depends only on the labels, the seed and the test size, so every model and
backbone on a dataset is scored on the same held-out images; the search sees only the
training part; the chosen model is refitted on all of it and scored once on the test
part. Nothing is printed unless `announce` is given; the report, the model and the
ledger row are saved unless the config says `save=False`.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from classify import cluster, local, protocol
from classify.bundles import save_bundle
from classify.config import (
    MODEL_STEP,
    RESULTS_FILE,
    ExperimentConfig,
    ExperimentError,
    check_grid,
)
from classify.fitting import Fitted, chosen_protocol, timed
from classify.inspection import leakage
from classify.models import ModelSpec, get_model
from classify.report import html, ledger, records, text
from classify.report.confusion import write_confusion
from classify.report.evaluation import Evaluation, evaluate
from classify.search import SCORINGS
from extract.featurefile import read_header


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
    estimator: Any  # the refitted model (saved unless config.save is False)
    files: SavedFiles | None  # None when config.save is False


def _silent(note: str) -> None:
    """Where notes go when run() is given no `announce`."""


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


def run(config: ExperimentConfig, announce: Callable[[str], None] | None = None
        ) -> ExperimentResult:
    """The whole experiment; notes go to `announce` (None: nowhere), the result comes
    back, and is saved unless `config.save` is False."""
    announce = announce or _silent
    spec = get_model(config.model)
    if config.scoring not in SCORINGS:
        raise ExperimentError(f"{config.scoring!r}: choose one of {', '.join(SCORINGS)}",
                              "scoring")
    check_grid(spec, config.grid)
    chosen = chosen_protocol(config)
    if protocol.needs_header(chosen):  # options the file's split rules out, before any draw
        protocol.check_options(read_header(config.features[0]), chosen)
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="classify-") as scratch:
        # The scratch folder holds the training part as a file the search workers map
        # (TMPDIR decides where); it lives until the model is saved.
        if config.repeats > 1:
            announce(f"draw 1 of {config.repeats} (seed {config.seed})")
        fitted = _fit(config, spec, timings, announce, Path(scratch))
        draws = [_draw(config.seed, fitted)]
        for number in range(1, config.repeats):
            # Each draw its own seed; the saved model and report are the first draw's.
            seed = config.seed + number
            announce(f"draw {number + 1} of {config.repeats} (seed {seed})")
            spent: dict[str, float] = {}
            draws.append(_draw(seed, _fit(replace(config, seed=seed), spec, spent,
                                          _without_load_note(announce),
                                          Path(scratch) / f"draw-{number + 1}")))
            for phase, seconds in spent.items():
                timings[phase] = timings.get(phase, 0.0) + seconds
        leaks = leakage.check_run(config.features, fitted.split, announce)
        return _evaluate_and_save(config, spec, fitted, timings,
                                  draws if config.repeats > 1 else [], leaks)


# How both backends begin the note that says which features they read, in how long.
LOAD_NOTE = "loaded "


def _without_load_note(announce: Callable[[str], None]) -> Callable[[str], None]:
    """A later draw's notes: the file is the first draw's, whose note named it once."""
    def later(line: str) -> None:
        if not line.startswith(LOAD_NOTE):
            announce(line)
    return later


def _fit(config: ExperimentConfig, spec: ModelSpec, timings: dict[str, float],
         announce: Callable[[str], None], scratch: Path) -> Fitted:
    """One split, search and refit, here or on the cluster."""
    if config.cluster is None:
        scratch.mkdir(exist_ok=True)
        return local.run(config, spec, timings, announce, scratch)
    return cluster.run(config, spec, timings, announce)


def _draw(seed: int, fitted: Fitted) -> records.Draw:
    """A draw's test figures."""
    evaluation = evaluate(fitted.split.y_test, fitted.y_pred, fitted.split.label_names)
    return records.Draw(seed, len(fitted.split.train_rows), len(fitted.split.test_rows),
                        evaluation.accuracy, evaluation.balanced_accuracy)


def _protocol(config: ExperimentConfig, fitted: Fitted) -> records.ProtocolRecord:
    ran = fitted.split.ran
    return records.ProtocolRecord(ran.kind, ran.text, ran.source, ran.n_val,
                                  config.train_per_class, config.test_per_class, config.repeats)


def _evaluate_and_save(config: ExperimentConfig, spec: ModelSpec, fitted: Fitted,
                       timings: dict[str, float], draws: list[records.Draw],
                       leaks: leakage.RunLeakage) -> ExperimentResult:
    split, search = fitted.split, fitted.search
    names = split.label_names
    evaluation = evaluate(split.y_test, fitted.y_pred, names)
    scores = [draw.balanced_accuracy for draw in draws]
    outputs = config.outputs
    stem = "+".join(Path(source.path).stem for source in fitted.sources)  # fused: every file
    name = run_name(outputs, stem, spec.name)
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
    ]
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
        # Empty when nothing is saved: no folder is named that does not exist.
        report_dir=str(outputs / "reports" / name) if config.save else "",
        model_dir=str(outputs / "models" / name) if config.save else "",
        balanced_accuracy=evaluation.balanced_accuracy, protocol=_protocol(config, fitted),
        draws=draws, balanced_accuracy_mean=float(np.mean(scores)) if draws else None,
        balanced_accuracy_std=float(np.std(scores)) if draws else None,
    )
    report_text = text.format_report(metrics, evaluation.text)
    if not config.save:
        return ExperimentResult(metrics, report_text, search, fitted.estimator, None)
    bundle = records.ModelBundle(
        model=spec.name, estimator=fitted.estimator, label_names=names, params=best_params,
        scale=config.scale, extractors=[s.extractor for s in fitted.sources],
        features=[s.path for s in fitted.sources],
        dataset_fingerprints=[s.dataset_fingerprint for s in fitted.sources],
        metrics={"accuracy": metrics.accuracy, "macro_f1": metrics.macro_f1,
                 "cv_score": metrics.cv_score},
        created=metrics.created, versions=records.library_versions(),
    )
    files = SavedFiles(Path(metrics.report_dir), Path(metrics.model_dir),
                       outputs / RESULTS_FILE, Path(metrics.report_dir) / html.PAGE)
    with timed(timings, "save"):
        _save_run(metrics, report_text, evaluation, bundle)
    records.write_json(files.report_dir / "metrics.json", metrics.to_dict())
    ledger.append_row(files.ledger, ledger.ledger_row(metrics))
    _write_html(metrics, split, fitted, outputs, leaks)
    return ExperimentResult(metrics, report_text, search, fitted.estimator, files)


def _run_title(metrics: records.Metrics) -> str:
    """What a run's page and confusion matrix are headed with: every feature file read,
    and whether they were fused."""
    names = " + ".join(Path(source.path).stem for source in metrics.features)
    return f"{'fused: ' if len(metrics.features) > 1 else ''}{names} / {metrics.model}"


def run_name(outputs: Path, features_stem: str, model: str) -> str:
    """`<features-stem>-<model>-<timestamp>`, suffixed when a run of the same second exists."""
    base = f"{features_stem}-{model}-{dt.datetime.now():%Y%m%d-%H%M%S}"
    name, n = base, 1
    while (outputs / "reports" / name).exists() or (outputs / "models" / name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def _save_run(metrics: records.Metrics, report_text: str, evaluation: Evaluation,
              bundle: records.ModelBundle) -> None:
    """The model bundle, report.txt and confusion.png (metrics.json follows, with timings)."""
    save_bundle(Path(metrics.model_dir), bundle)
    report_dir = Path(metrics.report_dir)
    report_dir.mkdir(parents=True)
    (report_dir / "report.txt").write_text(report_text, encoding="utf-8")
    title = f"{_run_title(metrics)}\naccuracy {evaluation.accuracy:.4f}"
    write_confusion(report_dir / "confusion.png", evaluation, bundle.label_names, title)


def _write_html(metrics: records.Metrics, split: Any, fitted: Fitted, outputs: Path,
                leaks: leakage.RunLeakage) -> None:
    """The run's HTML page and outputs/index.html, from the values the run produced."""
    root = fitted.sources[0].dataset_root
    html.write_run_report(
        Path(metrics.report_dir),
        title=_run_title(metrics),
        settings={
            "extractors": [{"features": s.path, **s.extractor} for s in metrics.features],
            "model": f"{metrics.model}: {metrics.model_summary}"
                     + (" on standardised features" if metrics.scale else ""),
            # Shown only where they apply: an empty row says nothing.
            **({"cluster": metrics.cluster} if metrics.cluster else {}),
            "scoring": metrics.scoring,
            "protocol": {**_protocol_settings(metrics), "seed": metrics.seed,
                         **({"cv": metrics.cv_used}
                            if metrics.grid and not text.single_fold(metrics) else {}),
                         "n_train": metrics.n_train, "n_test": metrics.n_test,
                         **_draw_settings(metrics)},
            **({"grid": metrics.grid, "best_params": metrics.best_params,
                text.score_name(metrics): text.chosen_score(metrics)}
               if metrics.grid else {"search": text.NO_SEARCH}),
            **({"tie_break": metrics.tie_break} if metrics.tie_break else {}),
            "created": metrics.created,
            "timings": {phase: f"{seconds:.2f} s" for phase, seconds in metrics.timings.items()},
        },
        label_names=split.label_names, y_true=split.y_test, y_pred=fitted.y_pred,
        confidence=fitted.top_probability,
        test_paths=[fitted.paths[row] for row in split.test_rows],
        image_root=Path(root) if root else None, index_page=outputs / html.PAGE,
        extra_sections=leakage.report_sections(leaks, fitted, outputs, Path(metrics.report_dir)),
    )
    html.write_index(outputs, RESULTS_FILE)


def _protocol_settings(metrics: records.Metrics) -> dict[str, Any]:
    """The page's protocol rows: the test size of a random split, else how the rows
    were chosen (and the given split's val part)."""
    ran = metrics.protocol
    if ran is None or ran.kind == "random":
        return {"test_size": metrics.test_size}
    return {"split": ran.text, **({"n_val": ran.n_val} if ran.n_val else {})}


def _draw_settings(metrics: records.Metrics) -> dict[str, Any]:
    """The page's rows on the per-class protocol's score and on --repeats' draws."""
    rows: dict[str, Any] = {}
    if metrics.protocol is not None and metrics.protocol.kind == "per_class":
        rows["balanced_accuracy"] = f"{metrics.balanced_accuracy:.4f}"
    if metrics.draws:
        rows["draws"] = text.draws_line(metrics)
    return rows
