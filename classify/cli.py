"""`classify`: train and compare shallow classifiers on cached deep features.

Only click and the light registry modules load at import time; scikit-learn, h5py,
matplotlib and the estimator libraries load once a run needs them, so `--help` is
instant. TensorFlow is never imported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from classify.models import (
    MODELS,
    SCORINGS,
    ModelError,
    ModelSpec,
    describe_models,
    get_model,
    model_parameters,
    resolve_grid,
)
from classify.report.ledger import HistoryFilter, LedgerError, format_table, read_rows
from common.dask_cluster import ClusterError, local_workers
from common.errors import UserError, os_error_line
from common.interrupt import exit_interrupted, unsaved_note

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


def _warn(message: str) -> None:
    click.echo(message, err=True)


def _features_paths(
    outputs: Path,
    features: tuple[Path, ...],
    dataset: str | None,
    backbones: tuple[str, ...],
    poolings: tuple[str, ...],
    image_sizes: tuple[int, ...] = (),
) -> list[Path]:
    """The feature files the options name, in order (several are fused: classify.fusion);
    the newest complete one when they name none."""
    from classify.locate import LocateError, UnknownNameError, by_dataset, check_names, newest

    if features:
        if dataset or backbones or poolings or image_sizes:
            raise click.UsageError("give either --features or --dataset/--backbone, not both")
        missing = next((path for path in features if not path.exists()), None)
        if missing is not None:  # a usage error, as a folder named there is
            raise click.BadParameter(
                f"{missing}: no such feature file (extract --list shows those in "
                f"{outputs / 'features'})", param_hint="'--features'")
        return list(features)
    if dataset or backbones:
        if not (dataset and backbones):
            raise click.UsageError("--dataset and --backbone go together")
        sizes = _sizes_per_backbone(backbones, image_sizes)
        try:
            check_names(outputs / "features", backbones, poolings, dataset)
        except UnknownNameError as exc:
            raise click.BadParameter(str(exc), param_hint=f"'{exc.option}'") from None
        try:  # every backbone with every pooling, in the order given
            return [by_dataset(outputs / "features", dataset, backbone, pooling, size,
                               several_backbones=len(backbones) > 1)
                    for backbone, size in zip(backbones, sizes)
                    for pooling in poolings or (None,)]
        except LocateError as exc:
            raise click.ClickException(str(exc)) from None
    if poolings or image_sizes:
        raise click.UsageError("--pooling and --image-size need --dataset and --backbone")
    try:
        path = newest(outputs / "features")
    except LocateError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"using the newest complete feature file: {path}")
    return [path]


def _sizes_per_backbone(backbones: tuple[str, ...], image_sizes: tuple[int, ...]
                        ) -> list[int | None]:
    """--image-size given once applies to every --backbone; given once per --backbone,
    each belongs to the backbone in the same place."""
    if len(image_sizes) <= 1:
        return [image_sizes[0] if image_sizes else None] * len(backbones)
    if len(image_sizes) != len(backbones):
        raise click.UsageError(
            f"{len(image_sizes)} --image-size for {len(backbones)} --backbone: give one for "
            "every backbone, or one per --backbone, in order")
    return list(image_sizes)


# The options --history reads as filters on the recorded runs, and the others it reads.
HISTORY_FILTERS = ("spec", "dataset", "backbones", "poolings")
HISTORY_READS = ("history", "outputs")


def _print_history(outputs: Path, filters: HistoryFilter, ignored: list[str]) -> None:
    if ignored:
        _warn(f"note: {', '.join(ignored)} {'is' if len(ignored) == 1 else 'are'} ignored "
              "with --history (it filters by --model, --dataset, --backbone and --pooling)")
    path = outputs / RESULTS_FILE
    try:
        recorded = read_rows(path)
    except LedgerError as exc:
        raise click.ClickException(str(exc)) from None
    rows = [row for row in recorded if filters.keeps(row)]
    if not recorded:
        click.echo(f"{path}: no runs recorded yet")
        return
    if not rows:
        click.echo(f"{path}: none of the {len(recorded)} recorded runs matches {filters.describe()}")
    else:
        shown = "" if len(rows) == len(recorded) else f" matching {filters.describe()}"
        click.echo(f"{len(rows)} of {len(recorded)} runs in {path}{shown}, best accuracy first:\n")
        click.echo(format_table(rows))
    from classify.report.html import write_index

    try:  # rewritten here too, for runs recorded before the page existed
        page = write_index(outputs, RESULTS_FILE)
    except OSError as exc:
        _warn(f"warning: cannot write {outputs / 'index.html'}: {exc.strerror or exc}")
        return
    click.echo(f"\nall runs side by side, with links to each report: {page}")


def _history_options(ctx: click.Context) -> tuple[HistoryFilter, list[str]]:
    """--history's filters, and the other options given on the command line (ignored)."""
    given = [p for p in ctx.command.params
             if p.name and p.name not in HISTORY_READS
             and ctx.get_parameter_source(p.name) in (ParameterSource.COMMANDLINE,
                                                     ParameterSource.ENVIRONMENT)]
    values = {p.name: ctx.params.get(p.name) for p in given if p.name in HISTORY_FILTERS}
    for name in ("backbones", "poolings"):
        if len(values.get(name) or ()) > 1:
            raise click.UsageError(f"--history filters by one --{name[:-1]}")
    filters = HistoryFilter(
        model=values["spec"].name if "spec" in values else None,
        dataset=values.get("dataset"),
        backbone=(values.get("backbones") or (None,))[0],
        pooling=(values.get("poolings") or (None,))[0],
    )
    ignored = [p.opts[0] for p in given if p.name not in HISTORY_FILTERS]
    return filters, ignored


EXAMPLES = """Examples:

\b
  classify --model logreg --grid C          # the newest feature file, C over 1e-4..1e3
  classify --dataset flowers17 --backbone resnet50 --model xgb --grid max_depth=3,6
  classify --history --model xgb            # the xgb runs so far; outputs/index.html compares all
"""


def _list_models(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """An eager flag: print the models and their default grids, and stop."""
    if value and not ctx.resilient_parsing:
        click.echo(describe_models())
        ctx.exit()


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
               epilog=EXAMPLES)
@click.option("--list-models", is_flag=True, is_eager=True, expose_value=False,
              callback=_list_models, help="List the models and their default grids, and exit.")
@click.option("--features", "features_files", multiple=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="Feature file (.h5) written by extract. Repeat to classify on the files' "
              "features concatenated (fusion: the same images, rows matched by path). Default: "
              "the newest complete file in OUTPUTS/features.")
@click.option("--dataset",
              help="Dataset name (or folder); with --backbone finds its feature file in "
              "OUTPUTS/features, listing the candidates when several match.")
@click.option("--backbone", "backbones", multiple=True,
              help="Backbone the features came from (with --dataset). Repeat to fuse several.")
@click.option("--pooling", "poolings", multiple=True,
              help="Pooling of the features (with --dataset); may be omitted when one file "
              "matches. Repeat to fuse several (--pooling avg --pooling max).")
@click.option("--image-size", "image_sizes", multiple=True, type=click.IntRange(min=1),
              help="Input size the features were extracted at (with --dataset), to narrow down: "
              "once for every --backbone, or once per --backbone, in order.")
@click.option("--model", "spec", default="logreg", show_default=True, callback=_check_model,
              help="Classifier: "
              + "; ".join(f"{name} = {spec.summary}" for name, spec in MODELS.items()))
@click.option("--grid", "grid_options", multiple=True, metavar="PARAM[=V1,V2]",
              help="Search PARAM over the model's default values, or over V1,V2,... (int, float, "
              "None, true/false or text). Repeat to search the product. --grid default searches "
              "the model's whole default grid (classify --list-models). Without --grid the "
              "defaults are fitted once.")
@click.option("--scoring", type=click.Choice(SCORINGS), default="accuracy", show_default=True,
              help="What the search maximises. Among candidates within one validation image of "
              "the best (or its std across folds, if larger), those within 0.05 of the best "
              "mean validation log-loss go to the smallest C (otherwise the best log-loss; "
              "models with probabilities).")
@click.option("--scale/--no-scale", default=False, show_default=True,
              help="Standardise the features (the scaler is fitted inside each fold).")
@click.option("--test-size", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=0.25, show_default=True,
              help="Fraction of the images held out for the single final test (a random split).")
@click.option("--split", "split_mode", type=click.Choice(["given", "random"]),
              help="given: the split that came with the images (split folders, a label file's "
              "split column): search on train (val, if any, the one validation fold), refit on "
              "train+val, test on test. random: a stratified --test-size split. [default: given "
              "where the file has one, else random]")
@click.option("--train-per-class", type=click.IntRange(min=1), metavar="N",
              help="The papers' protocol: N training images per class drawn with --seed, tested "
              "on the others (see --test-per-class) and scored by mean per-class recall (balanced "
              "accuracy).")
@click.option("--test-per-class", type=click.IntRange(min=1), metavar="M",
              help="With --train-per-class: test on at most M of the other images per class "
              "[default: all of them].")
@click.option("--repeats", type=click.IntRange(min=1), default=1, show_default=True, metavar="R",
              help="Average R draws of the split (seeds --seed, --seed+1, ...): the mean and "
              "standard deviation are reported; the first draw's model is saved.")
@click.option("--cv", type=click.IntRange(min=2), default=3, show_default=True,
              help="Stratified folds of the search (fewer when a class has fewer training images).")
@click.option("--seed", type=int, default=42, show_default=True,
              help="Seed of the split and the folds: the same seed gives the same split for every "
              "model and backbone on a dataset.")
@click.option("--jobs", type=int, default=-1, show_default=True, callback=_check_jobs,
              help="Parallel fits during the search (-1: all cores).")
@click.option("--cluster", metavar="ADDRESS|local:N",
              help="Run the search on a Dask cluster: local:N starts N worker processes here, "
              "anything else is a scheduler address (tcp://host:8786). The workers read the "
              "feature file themselves, so its path must be visible to them (a shared filesystem) "
              "and offtheshelf must be installed there. logreg (out of core, L-BFGS) and xgb "
              "(XGBoost's Dask interface) only; no --scale; --jobs applies only to the saved "
              "model.")
@click.option("--outputs", type=click.Path(file_okay=False, path_type=Path),
              default=Path("outputs"), show_default=True,
              help="Output root: features/ is read; reports/, models/ and results.csv are written.")
@click.option("--history", is_flag=True,
              help="Print the recorded runs (OUTPUTS/results.csv), best accuracy first, with the "
              "path of each report, and exit. --model, --dataset, --backbone and --pooling filter "
              "them.")
def main(
    features_files: tuple[Path, ...],
    dataset: str | None,
    backbones: tuple[str, ...],
    poolings: tuple[str, ...],
    image_sizes: tuple[int, ...],
    spec: ModelSpec,
    grid_options: tuple[str, ...],
    scoring: str,
    scale: bool,
    test_size: float,
    cv: int,
    seed: int,
    jobs: int,
    cluster: str | None,
    outputs: Path,
    history: bool,
    split_mode: str | None = None,
    train_per_class: int | None = None,
    test_per_class: int | None = None,
    repeats: int = 1,
) -> None:
    """Search hyper-parameters of a shallow classifier on cached features and report.

    The split is the one given with the images (--split given), or fixed by the labels,
    --seed and --test-size, or N images per class (--train-per-class); the search
    sees only the training part; the best model is refitted on it and scored once on
    the test part. Results are printed, saved under OUTPUTS/reports/ and
    OUTPUTS/models/, and appended to OUTPUTS/results.csv (see --history).
    """
    if history:
        _print_history(outputs, *_history_options(click.get_current_context()))
        return
    from classify.experiment import ExperimentConfig, ExperimentError, run
    from classify.protocol import ProtocolUsageError

    try:
        grid = resolve_grid(spec, grid_options, model_parameters(spec))
    except ModelError as exc:
        raise click.BadParameter(str(exc), param_hint="'--grid'") from None
    if cluster is not None:
        _check_cluster(cluster, spec, grid, scale)
    paths = _features_paths(outputs, features_files, dataset, backbones, poolings, image_sizes)
    if cluster is not None and len(paths) > 1:
        raise click.UsageError("--cluster reads one feature file; fuse files without --cluster")
    if test_per_class is not None and train_per_class is None:
        raise click.UsageError("--test-per-class goes with --train-per-class N; give both")
    config = ExperimentConfig(features=tuple(paths), model=spec.name, grid=grid, scoring=scoring,
                              scale=scale, test_size=test_size, cv=cv, seed=seed, jobs=jobs,
                              cluster=cluster, outputs=outputs, split=split_mode,
                              train_per_class=train_per_class, test_per_class=test_per_class,
                              repeats=repeats)
    try:
        result = run(config, announce=click.echo)
    except ProtocolUsageError as exc:  # decided from the file's header, before any draw
        raise click.UsageError(str(exc)) from None
    except ExperimentError as exc:  # run()'s argument named as this command's option
        raise click.ClickException(f"{exc.option}: {exc.detail}" if exc.option
                                   else str(exc)) from None
    except UserError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:  # e.g. no room in TMPDIR for the shared training part
        raise click.ClickException(os_error_line(exc, outputs)) from None
    except KeyboardInterrupt:
        exit_interrupted(unsaved_note([outputs / "reports", outputs / "models"]))
    click.echo(result.report, nl=False)
    click.echo(f"saved       {result.files.report_dir}/ and {result.files.model_dir}/ "
               f"in {result.metrics.timings['save']:.2f} s")
    click.echo(f"report      {result.files.report_page} (all runs: {outputs / 'index.html'})")


def _check_cluster(cluster: str, spec: ModelSpec, grid: dict[str, list[Any]], scale: bool
                   ) -> None:
    """Refuse a --cluster run that cannot work before any cluster starts."""
    from classify.cluster import unsupported  # sklearn loads with the cluster backend

    try:
        local_workers(cluster)
    except ClusterError as exc:
        raise click.BadParameter(str(exc), param_hint="'--cluster'") from None
    reason = unsupported(spec, grid, scale)
    if reason:
        raise click.UsageError(reason)


if __name__ == "__main__":
    main()
