"""`classify`: train and compare shallow classifiers on cached deep features.

Only click and the light registry modules load at import time; scikit-learn, h5py,
matplotlib and the estimator libraries load once a run needs them, so `--help` is
instant. TensorFlow is never imported.
"""

from __future__ import annotations

import datetime as dt
import math
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from classify.ledger import LedgerError, append_row, format_table, read_rows
from classify.models import MODELS, ModelError, ModelSpec, get_model, resolve_grid

if TYPE_CHECKING:
    from classify import protocol as protocol_types
    from classify.reports import Evaluation

RESULTS_FILE = "results.csv"


def _check_model(ctx: click.Context, param: click.Parameter, value: str) -> ModelSpec:
    try:
        return get_model(value)
    except ModelError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def _check_jobs(ctx: click.Context, param: click.Parameter, value: int) -> int:
    if value == 0 or value < -1:
        raise click.BadParameter(f"{value}: use a positive count or -1 for all cores")
    return value


@contextmanager
def _timed(timings: dict[str, float], phase: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[phase] = time.perf_counter() - start


def _warn(message: str) -> None:
    click.echo(message, err=True)


def _features_paths(
    outputs: Path,
    features: tuple[Path, ...],
    dataset: str | None,
    backbones: tuple[str, ...],
    poolings: tuple[str, ...],
    image_size: int | None = None,
) -> list[Path]:
    """The feature files the options name, in order (several are fused: classify.fusion);
    the newest complete one when they name none."""
    from classify.locate import LocateError, by_dataset, newest

    if features:
        if dataset or backbones or poolings or image_size:
            raise click.UsageError("give either --features or --dataset/--backbone, not both")
        return list(features)
    if dataset or backbones:
        if not (dataset and backbones):
            raise click.UsageError("--dataset and --backbone go together")
        try:  # every backbone with every pooling, in the order given
            return [by_dataset(outputs / "features", dataset, backbone, pooling, image_size)
                    for backbone in backbones for pooling in poolings or (None,)]
        except LocateError as exc:
            raise click.ClickException(str(exc)) from None
    if poolings or image_size:
        raise click.UsageError("--pooling and --image-size need --dataset and --backbone")
    try:
        path = newest(outputs / "features")
    except LocateError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"using the newest complete feature file: {path}")
    return [path]


def _print_history(outputs: Path) -> None:
    path = outputs / RESULTS_FILE
    try:
        rows = read_rows(path)
    except LedgerError as exc:
        raise click.ClickException(str(exc)) from None
    if not rows:
        click.echo(f"{path}: no runs recorded yet")
        return
    click.echo(format_table(rows))
    from classify.html_report import write_index

    try:  # rewritten here too, for runs recorded before the page existed
        page = write_index(outputs, RESULTS_FILE)
    except OSError as exc:
        _warn(f"warning: cannot write {outputs / 'index.html'}: {exc.strerror or exc}")
        return
    click.echo(f"\nall runs side by side, with links to each report: {page}")


EXAMPLES = """Examples:

\b
  classify --model logreg --grid C          # the newest feature file, C over 1e-4..1e3
  classify --dataset flowers17 --backbone resnet50 --model xgb --grid max_depth=3,6
  classify --history                        # every run so far; outputs/index.html compares them
"""


def _list_models(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """An eager flag: print the models and their default grids, and stop."""
    if value and not ctx.resilient_parsing:
        from classify.models import describe_models

        click.echo(describe_models())
        ctx.exit()


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
               epilog=EXAMPLES)
@click.option("--list-models", is_flag=True, is_eager=True, expose_value=False,
              callback=_list_models, help="List the models and their default grids, and exit.")
@click.option(
    "--features",
    "features_files",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Feature file (.h5) written by extract. Repeat to classify on the files' features "
    "concatenated (fusion: the same images, rows matched by path). Default: the newest "
    "complete file in OUTPUTS/features.",
)
@click.option(
    "--dataset",
    help="Dataset name (or folder); with --backbone finds its feature file in "
    "OUTPUTS/features, listing the candidates when several match.",
)
@click.option(
    "--backbone",
    "backbones",
    multiple=True,
    help="Backbone the features came from (with --dataset). Repeat to fuse several.",
)
@click.option(
    "--pooling",
    "poolings",
    multiple=True,
    help="Pooling of the features (with --dataset); may be omitted when one file matches. "
    "Repeat to fuse several (--pooling avg --pooling max).",
)
@click.option(
    "--image-size",
    type=click.IntRange(min=1),
    help="Input size the features were extracted at (with --dataset), to narrow down.",
)
@click.option(
    "--model",
    "spec",
    default="logreg",
    show_default=True,
    callback=_check_model,
    help="Classifier: " + "; ".join(f"{name} = {spec.summary}" for name, spec in MODELS.items()),
)
@click.option(
    "--grid",
    "grid_options",
    multiple=True,
    metavar="PARAM[=V1,V2]",
    help="Search PARAM over the model's default values, or over V1,V2,... (int, float, None, "
    "true/false or text). Repeat to search the product. Without --grid the defaults are "
    "fitted once.",
)
@click.option(
    "--scale/--no-scale",
    default=False,
    show_default=True,
    help="Standardise the features (the scaler is fitted inside each fold).",
)
@click.option(
    "--test-size",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.25,
    show_default=True,
    help="Fraction of the images held out for the single final test.",
)
@click.option(
    "--cv",
    type=click.IntRange(min=2),
    default=3,
    show_default=True,
    help="Stratified folds of the search (fewer when a class has fewer training images).",
)
@click.option(
    "--seed",
    type=int,
    default=42,
    show_default=True,
    help="Seed of the split and the folds: the same seed gives the same split for every "
    "model and backbone on a dataset.",
)
@click.option(
    "--jobs",
    type=int,
    default=-1,
    show_default=True,
    callback=_check_jobs,
    help="Parallel fits during the search (-1: all cores).",
)
@click.option(
    "--cluster",
    metavar="ADDRESS|local:N",
    help="Run the search on a Dask cluster: local:N starts N worker processes here, anything "
    "else is a scheduler address (tcp://host:8786). The workers read the feature file "
    "themselves, so its path must be visible to them (a shared filesystem) and offtheshelf "
    "must be installed there. logreg (out of core, L-BFGS) and xgb (XGBoost's Dask "
    "interface) only; no --scale; --jobs applies only to the saved model.",
)
@click.option(
    "--outputs",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("outputs"),
    show_default=True,
    help="Output root: features/ is read; reports/, models/ and results.csv are written.",
)
@click.option(
    "--history",
    is_flag=True,
    help="Print every recorded run (OUTPUTS/results.csv), best accuracy first, and exit.",
)
def main(
    features_files: tuple[Path, ...],
    dataset: str | None,
    backbones: tuple[str, ...],
    poolings: tuple[str, ...],
    image_size: int | None,
    spec: ModelSpec,
    grid_options: tuple[str, ...],
    scale: bool,
    test_size: float,
    cv: int,
    seed: int,
    jobs: int,
    cluster: str | None,
    outputs: Path,
    history: bool,
) -> None:
    """Search hyper-parameters of a shallow classifier on cached features and report.

    The stratified split is fixed by the labels, --seed and --test-size; the search
    sees only the training part; the best model is refitted on it and scored once on
    the test part. Results are printed, saved under OUTPUTS/reports/ and
    OUTPUTS/models/, and appended to OUTPUTS/results.csv (see --history).

    \b
    Fusion (features of the same images concatenated, in the order named):
      classify --features a.h5 --features b.h5 --model logreg --grid C
      classify --dataset flowers17 --backbone efficientnet_lite0 \\
               --backbone efficientnet_lite2 --model logreg --grid C
      classify --dataset flowers17 --backbone efficientnet_lite2 --pooling avg --pooling max
    """
    if history:
        _print_history(outputs)
        return
    from classify import protocol

    try:
        grid = resolve_grid(spec, grid_options, protocol.model_parameters(spec))
    except ModelError as exc:
        raise click.BadParameter(str(exc), param_hint="'--grid'") from None
    if cluster is not None:
        _check_cluster(cluster, spec, grid, scale)
    paths = _features_paths(outputs, features_files, dataset, backbones, poolings, image_size)
    if cluster is not None and len(paths) > 1:
        raise click.UsageError("--cluster reads one feature file; fuse files without --cluster")
    _run(paths, spec, grid, Protocol(scale, test_size, cv, seed, jobs, cluster), outputs)


def _check_cluster(cluster: str, spec: ModelSpec, grid: dict[str, list[Any]], scale: bool
                   ) -> None:
    """Refuse a --cluster run that cannot work before any cluster starts."""
    from classify.cluster import unsupported
    from extract.cluster import ClusterError, local_workers

    try:
        local_workers(cluster)
    except ClusterError as exc:
        raise click.BadParameter(str(exc), param_hint="'--cluster'") from None
    reason = unsupported(spec, grid, scale)
    if reason:
        raise click.UsageError(reason)


@dataclass(frozen=True)
class Protocol:
    """The protocol options of one run."""

    scale: bool
    test_size: float
    cv: int
    seed: int
    jobs: int
    cluster: str | None = None  # a Dask scheduler address or local:N


@dataclass
class Outcome:
    """What the search and the refit produced, whichever path ran them: all the report needs."""

    file_info: dict[str, Any]
    label_names: list[str]
    y_test: Any  # encoded labels of the test part
    n_train: int
    n_test: int
    dropped: list[str]
    model_summary: str  # how the model was fitted
    searched: protocol_types.SearchResult
    tested: protocol_types.RefitResult
    test_paths: tuple[str, ...] = ()  # the test images, relative to the dataset root
    confidence: Any = None  # each test image's top probability (None: no probabilities)


def _file_info(paths: list[Path], attrs: dict[str, Any], rows: int, dims: int, classes: int
               ) -> dict[str, Any]:
    from classify import fusion, reports

    return {
        "path": " + ".join(map(str, paths)),
        "dataset_root": attrs.get("dataset_root"),
        "files": [str(path) for path in paths],
        "fused": len(paths) > 1,
        "extractors": [{key: extractor.get(key) for key in reports.EXTRACTOR_KEYS}
                       for extractor in fusion.extractors(attrs)],
        "dataset_fingerprint": attrs.get("dataset_fingerprint"),
        **{key: attrs.get(key) for key in reports.EXTRACTOR_KEYS},
        "rows": rows,
        "dims": dims,
        "dtype_in_memory": "float32",
        "classes": classes,
    }


def _announce_search(spec: ModelSpec, grid: dict[str, list[Any]], n_splits: int | None) -> None:
    if grid:
        click.echo(
            f"searching {math.prod(len(v) for v in grid.values())} candidate(s) x "
            f"{n_splits} folds of {spec.name} on the training part"
        )


def _run(
    paths: list[Path], spec: ModelSpec, grid: dict[str, list[Any]], options: Protocol,
    outputs: Path,
) -> None:
    """One experiment: load and split, search, refit and test, then report and save."""
    timings: dict[str, float] = {}
    with ExitStack() as stack:  # the scratch folder lives until the model is saved
        if options.cluster is None:
            outcome = _search_local(paths, spec, grid, options, timings, stack)
        else:
            outcome = _search_cluster(paths[0], spec, grid, options, timings)
        _report_and_save(paths, spec, grid, options, outputs, outcome, timings)


def _search_local(
    paths: list[Path], spec: ModelSpec, grid: dict[str, list[Any]], options: Protocol,
    timings: dict[str, float], stack: ExitStack,
) -> Outcome:  # fmt: skip
    """Features in this process: the training part memory-mapped for the search workers."""
    from classify import protocol
    from classify.fusion import read_fused
    from extract.store import FeatureFileError

    try:
        with _timed(timings, "load"):
            features = read_fused(paths)
            # Holds the training part as a file the search workers map (TMPDIR decides
            # where: tmpfs is fastest, a disk keeps the pages reclaimable).
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="classify-")))
            file_info = _file_info(paths, features.attrs, *features.X.shape,
                                   len(features.label_names))
            split = protocol.split_features(
                features, options.test_size, options.seed, _warn, scratch
            )
        click.echo(f"loaded {file_info['path']} in {timings['load']:.2f} s")
        n_splits = protocol.fold_count(split, options.cv, _warn) if grid else None
        _announce_search(spec, grid, n_splits)
        with _timed(timings, "search"):
            searched = protocol.search(
                spec, grid, split.X_train, split.y_train, n_splits=n_splits,
                scale=options.scale, seed=options.seed, jobs=options.jobs,
            )  # fmt: skip
        with _timed(timings, "refit_test"):
            tested = protocol.refit_and_test(
                spec, searched.best_params, split,
                scale=options.scale, seed=options.seed, jobs=options.jobs,
                path=searched.path,
            )  # fmt: skip
    except (FeatureFileError, protocol.ProtocolError) as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:  # e.g. no room in TMPDIR for the shared training part
        raise click.ClickException(f"{exc.filename or 'classify'}: {exc.strerror or exc}"
                                   ) from None
    from classify.html_report import top_probability

    return Outcome(file_info, split.label_names, split.y_test, len(split.train_rows),
                   len(split.test_rows), split.dropped, spec.summary, searched, tested,
                   tuple(features.paths[i] for i in split.test_rows),
                   top_probability(tested.estimator, split.X_test))


def _search_cluster(
    path: Path, spec: ModelSpec, grid: dict[str, list[Any]], options: Protocol,
    timings: dict[str, float],
) -> Outcome:  # fmt: skip
    """Features on Dask workers, which read the rows themselves; same split, folds, grid."""
    from distributed import CancelledError
    from distributed.scheduler import KilledWorker

    from classify import cluster, protocol
    from extract.cluster import ClusterError, connect
    from extract.store import FeatureFileError

    assert options.cluster is not None
    try:
        with ExitStack() as stack:
            with _timed(timings, "cluster"):
                client = stack.enter_context(connect(options.cluster))
                workers = client.nthreads()
            if not workers:
                raise ClusterError(f"--cluster {options.cluster}: the scheduler has no workers")
            click.echo(f"cluster {options.cluster}: {len(workers)} worker(s), "
                       f"{sum(workers.values())} thread(s)")
            with _timed(timings, "load"):
                data = cluster.load(client, path, options.test_size, options.seed, _warn)
            header, labels = data.header, data.labels
            click.echo(f"loaded {path} on the workers in {timings['load']:.2f} s")
            n_splits = protocol.fold_count(labels, options.cv, _warn) if grid else None
            _announce_search(spec, grid, n_splits)
            with _timed(timings, "search"):
                searched = cluster.search(client, data, spec, grid, n_splits=n_splits,
                                          seed=options.seed)
            with _timed(timings, "refit_test"):
                tested = cluster.refit_and_test(client, data, spec, searched.best_params,
                                                seed=options.seed, jobs=options.jobs)
    except (FeatureFileError, protocol.ProtocolError, ClusterError) as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:  # e.g. the scheduler went away mid-run
        raise click.ClickException(f"{exc.filename or options.cluster}: {exc.strerror or exc}"
                                   ) from None
    except (KilledWorker, CancelledError) as exc:  # workers died or left mid-run
        raise click.ClickException(f"--cluster {options.cluster}: the run lost its workers "
                                   f"({type(exc).__name__}: {exc})") from None
    file_info = _file_info([path], header.attrs, header.n_rows, header.feature_dim,
                           len(header.label_names))
    return Outcome(file_info, labels.label_names, labels.y_test, len(labels.train_rows),
                   len(labels.test_rows), labels.dropped, cluster.MODELS[spec.name], searched,
                   tested, tuple(header.paths[i] for i in labels.test_rows))


def _report_and_save(
    paths: list[Path], spec: ModelSpec, grid: dict[str, list[Any]], options: Protocol, outputs: Path,
    outcome: Outcome, timings: dict[str, float],
) -> None:  # fmt: skip
    """Evaluate the test predictions, print the report, save it, the model and the ledger row."""
    from classify import reports

    searched, tested, file_info = outcome.searched, outcome.tested, outcome.file_info
    evaluation = reports.evaluate(outcome.y_test, tested.y_pred, outcome.label_names)
    name = reports.run_name(outputs, "+".join(p.stem for p in paths), spec.name)
    metrics: dict[str, Any] = {
        "created": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "features": file_info,
        "model": spec.name,
        "model_summary": outcome.model_summary,
        "scale": options.scale,
        "cluster": options.cluster,
        "protocol": {
            "test_size": options.test_size,
            "seed": options.seed,
            "cv": options.cv,
            "cv_used": searched.n_splits,
            "jobs": options.jobs,
            "n_train": outcome.n_train,
            "n_test": outcome.n_test,
            "dropped_classes": outcome.dropped,
        },
        "grid": grid,
        "best_params": searched.best_params,
        "cv_score": searched.cv_score,
        "candidates": searched.candidates,
        **evaluation.summary(),
        "per_class": evaluation.per_class(),
        "confusion_labels": [outcome.label_names[i] for i in evaluation.labels],
        "confusion_matrix": evaluation.confusion,
        "test_images": [
            {"path": p, "true": outcome.label_names[t], "predicted": outcome.label_names[q]}
            for p, t, q in zip(outcome.test_paths, outcome.y_test, tested.y_pred)
        ],
        "warnings": tested.warnings,
        "timings": timings,  # "save" joins before metrics.json is written
        "report_dir": str(outputs / "reports" / name),
        "model_file": str(outputs / "models" / f"{name}.joblib"),
    }
    text = reports.format_report(metrics, evaluation.text)
    click.echo(text, nl=False)
    bundle = {
        "format_version": reports.BUNDLE_FORMAT_VERSION,
        "model": spec.name,
        "estimator": tested.estimator,
        "label_names": outcome.label_names,
        "params": searched.best_params,
        "scale": options.scale,
        "extractor": file_info["extractors"][0],
        "extractors": file_info["extractors"],  # predict concatenates them in this order
        "dataset_fingerprint": file_info["dataset_fingerprint"],
        "features": file_info["path"],
        "metrics": {key: metrics[key] for key in ("accuracy", "macro_f1", "cv_score")},
        "created": metrics["created"],
        "versions": reports.library_versions(),
    }
    try:
        with _timed(timings, "save"):
            _save(metrics, text, evaluation, outcome.label_names, bundle)
        reports.write_json(Path(metrics["report_dir"]) / "metrics.json", metrics)
        append_row(outputs / RESULTS_FILE, _ledger_row(metrics))
        page = _write_html(metrics, outcome, outputs)
    except OSError as exc:
        raise click.ClickException(
            f"{exc.filename or outputs}: {exc.strerror or exc}"
        ) from None
    click.echo(
        f"saved       {metrics['report_dir']}/ and {metrics['model_file']} "
        f"in {timings['save']:.2f} s"
    )
    click.echo(f"report      {page}  (all runs: {outputs / 'index.html'})")


def _write_html(metrics: dict[str, Any], outcome: Outcome, outputs: Path) -> Path:
    """The run's HTML page and outputs/index.html, from the values the run produced."""
    from classify import html_report

    root = metrics["features"]["dataset_root"]
    page = html_report.write_run_report(
        Path(metrics["report_dir"]),
        title=f"{Path(metrics['features']['path']).stem} / {metrics['model']}",
        settings={key: metrics[key] for key in (
            "created", "features", "model", "model_summary", "scale", "cluster", "protocol",
            "grid", "best_params", "cv_score", "timings")},
        label_names=outcome.label_names, y_true=outcome.y_test,
        y_pred=outcome.tested.y_pred, confidence=outcome.confidence,
        test_paths=outcome.test_paths, image_root=Path(root) if root else None,
        index_page=outputs / html_report.PAGE,
    )  # fmt: skip
    html_report.write_index(outputs, RESULTS_FILE)
    return page


def _save(
    metrics: dict[str, Any],
    text: str,
    evaluation: Evaluation,
    label_names: list[str],
    bundle: dict[str, Any],
) -> None:
    """The model bundle, report.txt and confusion.png (metrics.json follows, with timings)."""
    from classify import reports

    reports.save_bundle(Path(metrics["model_file"]), bundle)
    report_dir = Path(metrics["report_dir"])
    report_dir.mkdir(parents=True)
    (report_dir / "report.txt").write_text(text, encoding="utf-8")
    stem = "+".join(Path(file).stem for file in metrics["features"]["files"])
    title = f"{stem} / {metrics['model']}: accuracy {evaluation.accuracy:.4f}"
    reports.write_confusion(report_dir / "confusion.png", evaluation, label_names, title)


def _ledger_row(metrics: dict[str, Any]) -> dict[str, Any]:
    """The results.csv row of a run, taken from its metrics so the two always agree."""
    features = metrics["features"]
    return {
        "time": metrics["created"],
        "features": features["path"],
        "backbone": features["backbone"],
        "pooling": features["pooling"],
        "weights": features["weights"],
        "model": metrics["model"] + ("+scale" if metrics["scale"] else ""),
        "params": metrics["best_params"],
        "accuracy": f"{metrics['accuracy']:.6f}",
        "macro_f1": f"{metrics['macro_f1']:.6f}",
        "seconds": f"{sum(metrics['timings'].values()):.2f}",
        "report": metrics["report_dir"],
    }


if __name__ == "__main__":
    main()
