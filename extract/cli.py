"""`extract`: a folder of labelled images to a reusable HDF5 feature file."""

from __future__ import annotations

import math
import os
import shlex
import warnings
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

import click
from click.core import ParameterSource

import common.quiet  # noqa: F401 - first: keeps native log lines off the terminal
from common.dask_cluster import ClusterError, connect, local_workers
from common.errors import UserError, os_error_line
from common.hardware import memory
from common.interrupt import exit_interrupted
from extract import cache, parts
from extract.backbones import model_file, registry
from extract.backbones.preprocessing import DESCRIPTION as PREPROCESSINGS
from extract.labels import parse_columns, scan_labelled
from extract.plan import plan
from extract.scan import NotADatasetError, scan
from extract.settings import ENGINES, PRECISIONS, RunOptions, Settings, is_model_file

if TYPE_CHECKING:
    from extract.extraction import Outcome
    from extract.scan import Scan

DEFAULT_OUTPUTS = Path("outputs")
DEFAULT_DATASETS = Path("datasets")
# Above this share of the machine's memory, a note says what one batch costs.
MEMORY_NOTE_SHARE = 0.25


def _positive(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    if value is not None and value <= 0:
        raise click.BadParameter(f"must be a positive number, got {value}")
    return value


def _backbone(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A misspelt backbone is a usage error (exit 2), like a misspelt --model in classify,
    and so is a model file that is not there; the file is read once the other options
    are checked (model_file.settings)."""
    if is_model_file(value):
        if not Path(value).exists():
            raise click.BadParameter(f"{value}: no such model file")
        return value
    if Path(value).is_file():
        raise click.BadParameter(f"{value}: not a model file extract reads; give an ONNX "
                                 "model (.onnx) or an OpenVINO model (.xml, with its .bin)")
    try:
        registry.get_spec(value)
    except registry.BackboneError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def _weights(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A weights file that is not there is a usage error, refused before any work."""
    try:
        registry.check_weights(value)
    except registry.BackboneError as exc:
        raise click.UsageError(str(exc)) from None
    return value


def _cluster(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    try:
        if value is not None:
            local_workers(value)
    except ClusterError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def _labels_columns(ctx: click.Context, param: click.Parameter, value: str | None
                    ) -> tuple[str, ...] | None:
    try:
        return None if value is None else parse_columns(value)
    except UserError as exc:
        raise click.BadParameter(str(exc)) from None


# The options --list reads as filters (by parameter name); it ignores the others.
LIST_FILTERS = {"dataset": "--dataset", "backbone": "--backbone", "pooling": "--pooling",
                "image_size": "--image-size"}


def _given(ctx: click.Context) -> list[click.Parameter]:
    """The options given on the command line, in the order of --help."""
    return [p for p in ctx.command.params
            if p.name and ctx.get_parameter_source(p.name) is ParameterSource.COMMANDLINE]


def _print_list(ctx: click.Context, dataset: str | None, backbone: str | None,
                pooling: str | None, image_size: int | None) -> None:
    """--list: the feature files (of --dataset, --backbone, --pooling and --image-size,
    where given), the unfinished extractions, the converted models. Other options given
    are named as ignored."""
    given = _given(ctx)
    ignored = [p.opts[0] for p in given if p.name not in (*LIST_FILTERS, "list_cache")]
    if ignored:
        click.echo(f"note: {_and(ignored)} {'is' if len(ignored) == 1 else 'are'} ignored "
                   f"with --list (it filters by {_and(list(LIST_FILTERS.values()))})", err=True)
    if "backbone" not in {p.name for p in given}:
        backbone = None  # its default filters nothing
    elif is_model_file(backbone):
        backbone = PurePath(backbone).stem  # as a model file's features name it
    filters = {"dataset": dataset, "backbone": backbone, "pooling": pooling,
               "input_size": image_size}  # in the order of LIST_FILTERS
    shown = " ".join(f"{option} {value}" for option, value
                     in zip(LIST_FILTERS.values(), filters.values()) if value is not None)
    folder = (DEFAULT_OUTPUTS / "features").resolve()
    click.echo(f"feature files in {folder}/{' matching ' + shown if shown else ''}:")
    click.echo(cache.table([e for e in cache.entries(folder) if cache.matches(e, **filters)]))
    unfinished = [u for u in cache.unfinished(folder) if cache.matches(u, **filters)]
    if unfinished:
        click.echo()
        click.echo(cache.unfinished_table(unfinished))
    click.echo()
    click.echo(cache.converted_table(cache.converted_models()))


def _and(words: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def _command_line(ctx: click.Context) -> str:
    """This run's command as given, its paths made absolute: what `extract --list` shows
    to resume it once interrupted."""
    from extract.datasets import NAMED  # tqdm loads with the datasets module

    words = ["extract"]
    for param in _given(ctx):
        value = ctx.params.get(str(param.name))
        if isinstance(param, click.Option) and param.is_flag:
            words += [param.opts[0]] if value else []
            continue
        if isinstance(value, tuple):  # --labels-columns, parsed
            value = ",".join(value)
        elif isinstance(value, Path) or (
                param.name == "dataset" and value not in NAMED
                or param.name == "weights" and value not in ("imagenet", "random")
                or param.name == "backbone" and is_model_file(value)):
            value = os.path.abspath(value)
        words += [param.opts[0], str(value)]
    return shlex.join(words)


def _prune_cache(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """--prune-cache: remove the converted OpenVINO models, then exit."""
    if not value or ctx.resilient_parsing:
        return
    folder = cache.converted_models_folder()
    try:
        removed, freed = cache.prune_converted(folder)
    except OSError as exc:
        raise click.ClickException(os_error_line(exc, folder)) from None
    click.echo(f"removed {removed} converted model(s), {freed / 1e6:.1f} MB, from {folder}/; "
               "each is converted again when an extraction needs it")
    ctx.exit()


EXAMPLES = """Examples:

\b
  extract --dataset flowers17 --backbone efficientnet_lite0   # weights need no network
  extract --dataset photos --backbone dinov2.onnx --preprocess imagenet  # your own model
  extract --list-backbones                                   # backbones and feature sizes
"""


def _list_backbones(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """An eager flag: print the table and stop, before --dataset is required."""
    if value and not ctx.resilient_parsing:
        click.echo(registry.describe_backbones())
        ctx.exit()


@click.command(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXAMPLES)
@click.option("--list", "list_cache", is_flag=True,
              help="List the feature files in outputs/features/ (those of --dataset, "
                   "--backbone, --pooling and --image-size, where given), the unfinished "
                   "extractions with the command that resumes each, and the models "
                   "converted for OpenVINO, and exit.")
@click.option("--prune-cache", is_flag=True, expose_value=False, is_eager=True,
              callback=_prune_cache,
              help="Remove the models converted for OpenVINO (in the folder extract --list "
                   "names; each is converted again when needed), and exit.")
@click.option("--list-backbones", is_flag=True, is_eager=True, expose_value=False,
              callback=_list_backbones,
              help="List the backbones with feature sizes and whether their weights download, "
                   "and exit.")
@click.option("--dataset", metavar="NAME_OR_PATH",
              help="A named dataset (caltech101, flowers17, animals; looked up in "
                   "datasets/NAME and downloaded when missing) or a folder: one "
                   "sub-folder of images per class, or split folders (train/, val/, test/) "
                   "of class folders, or any folder of images with --labels. Required, "
                   "except with --list.")
@click.option("--labels", "labels_file", type=click.Path(exists=True, dir_okay=False,
                                                         path_type=Path),
              metavar="FILE.csv",
              help="A CSV or TSV with a header: each image's path (relative to --dataset, or "
                   "its id: the file name without extension), its label and, optionally, its "
                   "split (train, val, test). Columns are found by name (path|file|filename|"
                   "image|id, label|class|category, split) or named with --labels-columns.")
@click.option("--labels-columns", callback=_labels_columns, metavar="PATH,LABEL[,SPLIT]",
              help="The header names of the --labels file's path, label and split columns.")
@click.option("--backbone", default=registry.DEFAULT_BACKBONE, show_default=True,
              metavar="NAME|MODEL.onnx", callback=_backbone,
              help=f"ImageNet CNN: {', '.join(registry.BACKBONES)}; or your own model "
                   "file, ONNX (.onnx) or OpenVINO (.xml and .bin), run by OpenVINO.")
@click.option("--preprocess", metavar="NAME|mean=R,G,B;std=R,G,B",
              help=f"A model file's input scaling (required with one): {PREPROCESSINGS}.")
@click.option("--model-output", metavar="NAME",
              help="The output of a model file the features come from [default: its first].")
@click.option("--pooling", type=click.Choice(list(dict.fromkeys((*registry.POOLINGS,
                                                                  *model_file.POOLINGS)))),
              help="How feature maps become a vector [default: the backbone's own; "
                   "flatten for vgg16/vgg19, avg otherwise]. A model file's output: avg, max "
                   "or flatten for a 4-D map, cls (first token) or avg (of the others) for "
                   "3-D tokens, none for a 2-D vector [default: avg, cls, none].")
@click.option("--weights", default="imagenet", show_default=True,
              metavar="imagenet|random|PATH", callback=_weights,
              help="ImageNet weights via Keras' download cache, seeded random weights, "
                   "or a weights file.")
@click.option("--image-size", type=int, callback=_positive, metavar="N",
              help="Resize images to NxN [default: the backbone's own, e.g. 224].")
@click.option("--batch-size", default=32, show_default=True, type=int, callback=_positive,
              help="Images per forward pass.")
@click.option("--buffer-size", default=1000, show_default=True, type=int, callback=_positive,
              help="Rows kept in memory before a block is written to the shard's part file.")
@click.option("--engine", type=click.Choice(ENGINES), default="auto", show_default=True,
              help="What runs the model: auto is tensorflow when a GPU is visible, "
                   "openvino otherwise.")
@click.option("--precision", type=click.Choice(PRECISIONS), default="float32",
              show_default=True,
              help="Arithmetic of the forward pass: float32 gives exact features; bfloat16 "
                   "(CPU, through OpenVINO) and float16 (GPU) are faster and close.")
@click.option("--dtype", type=click.Choice(["float32", "float16"]), default="float32",
              show_default=True, help="Storage type of the features.")
@click.option("--compression", type=click.Choice(["none", "lzf", "gzip"]), default="none",
              show_default=True,
              help="HDF5 compression of the features: lzf makes sparse (flatten) features "
                   "much smaller but slower to read (see make bench: storage).")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Feature file [default: outputs/features/<dataset>-<backbone>-<pooling>-"
                   "<digest>.h5, the digest naming the folder and settings].")
@click.option("--datasets-dir", type=click.Path(file_okay=False, path_type=Path),
              default=DEFAULT_DATASETS, show_default=True, help="Where named datasets live.")
@click.option("--force", is_flag=True, help="Extract again even if a matching file exists.")
@click.option("--cluster", metavar="ADDRESS|local:N", callback=_cluster,
              help="Run shards on a Dask cluster: a scheduler address (tcp://host:8786) or "
                   "local:N for N worker processes here (local: one per GPU, else 1). "
                   "Workers need the images and --output folder at the same paths.")
@click.option("--shard-size", default=None, type=int, callback=_positive, metavar="N",
              help="Images per shard: each is one part file (a kill loses at most the "
                   "shard in progress) and, with --cluster, one Dask task, retried on "
                   "another worker if its worker dies [default: 384].")
def main(
    dataset: str | None,
    backbone: str,
    pooling: str | None,
    weights: str,
    image_size: int | None,
    batch_size: int,
    buffer_size: int,
    engine: str,
    precision: str,
    dtype: str,
    compression: str,
    output: Path | None,
    datasets_dir: Path,
    force: bool,
    cluster: str | None,
    shard_size: int | None,
    labels_file: Path | None = None,
    labels_columns: tuple[str, ...] | None = None,
    preprocess: str | None = None,
    model_output: str | None = None,
    list_cache: bool = False,
) -> None:
    """Run a folder of labelled images once through a headless ImageNet CNN and keep
    the features in HDF5 for `classify`. Rerunning reuses a matching file, updates it
    when images were added or changed (only those go through the model), and resumes
    an interrupted run; other settings get a file of their own."""
    from extract import datasets as named
    from extract import mapper as engines
    from extract.extraction import default_output, run

    ctx = click.get_current_context()
    if list_cache:
        _print_list(ctx, dataset, backbone, pooling, image_size)
        return
    if dataset is None:
        raise click.MissingParameter(ctx=ctx, param=next(
            p for p in ctx.command.params if p.name == "dataset"))
    planned_output: Path | None = output
    try:
        # Usage errors first, before any file is read: the command line's own faults.
        if labels_columns and labels_file is None:
            raise click.UsageError("--labels-columns names the columns of a --labels file; "
                                   "give --labels FILE.csv too")
        try:
            named.check_path(dataset)
        except named.DatasetError as exc:
            raise click.UsageError(str(exc)) from None
        if is_model_file(backbone):  # the file is read now: a bad one fails at once
            settings = model_file.settings(
                backbone, preprocess=preprocess, model_output=model_output, pooling=pooling,
                image_size=image_size, weights=weights, engine=engine, precision=precision,
                dtype=dtype)
            engines.check(settings.engine, precision)
        else:
            model_file.check_built_in(backbone, preprocess, model_output, pooling)
            spec = registry.get_spec(backbone)
            engine = engines.resolve_engine(engine)
            engines.check(engine, precision)
            settings = Settings(backbone, weights, pooling or spec.pooling,
                                image_size or spec.input_size, dtype, engine, precision)
        memory_note = (None if settings.is_model_file
                       else _check_size(settings, batch_size, _local_processes(cluster)))
        if memory_note:
            click.echo(memory_note)
        root = named.resolve_dataset(dataset, datasets_dir)
        images = _scan(root, labels_file, labels_columns)
        click.echo(_found(root, images))
        planned_output = output or default_output(DEFAULT_OUTPUTS.resolve() / "features",
                                                  Path(dataset).name, settings, plan(images))
        options = RunOptions(batch_size, buffer_size, shard_size,
                             None if compression == "none" else compression, force)
        if cluster:
            outcome = _run_on_cluster(cluster, images, settings, planned_output, options,
                                      Path(dataset).name, _command_line(ctx))
        else:
            outcome = run(images, settings, planned_output, options=options,
                          dataset_name=Path(dataset).name, log=click.echo,
                          command=_command_line(ctx))
    except (NotADatasetError, model_file.ModelFileOptionError) as exc:
        raise click.UsageError(str(exc)) from None
    except UserError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        exit_interrupted(_interrupted(planned_output, force))
    except OSError as exc:
        raise click.ClickException(os_error_line(exc, planned_output)) from None
    for path in outcome.skipped:
        click.echo(f"skipped (unreadable): {root / path}", err=True)
    click.echo(outcome.summary())


def _local_processes(cluster: str | None) -> int:
    """Processes on this machine that each run a batch at a time (0: a remote cluster)."""
    if cluster is None:
        return 1
    return local_workers(cluster) or 0


def _check_size(settings: Settings, batch_size: int, processes: int) -> str | None:
    """--image-size against the backbone's minimum and, with --batch-size, against this
    machine's memory, before any work: a usage error where the run cannot succeed, and a
    note on what a batch costs where it takes much of the memory."""
    try:
        registry.check_input_size(settings.backbone, settings.input_size)
    except registry.BackboneError as exc:
        raise click.BadParameter(str(exc), param_hint="'--image-size'") from None
    available = memory()
    if not processes or available is None:
        return None
    per_image = processes * registry.batch_bytes(settings.backbone, settings.input_size, 1)
    needed = batch_size * per_image
    if needed <= MEMORY_NOTE_SHARE * available:
        return None
    workers = f" on each of {processes} workers" if processes > 1 else ""
    cost = (f"a batch of {batch_size} images at {settings.input_size} px{workers} takes at "
            f"least {_in_bytes(needed)} ({settings.backbone}'s input and activations)")
    if needed <= available:
        return (f"note: {cost} of this machine's {_in_bytes(available)}; a smaller "
                "--batch-size takes less")
    fitting = int(MEMORY_NOTE_SHARE * available // per_image)
    if fitting >= 1:
        advice = f"--batch-size {fitting} fits ({_in_bytes(fitting * per_image)})"
    else:
        per_pixel = processes * registry.batch_bytes(settings.backbone, 1, 1)
        largest = math.isqrt(int(MEMORY_NOTE_SHARE * available // per_pixel))
        default = registry.get_spec(settings.backbone).input_size
        advice = (f"even with --batch-size 1, --image-size {largest} is about the most that "
                  f"fits ({settings.backbone}'s default is {default})")
    raise click.BadParameter(f"{cost}, more than this machine's {_in_bytes(available)}; "
                             f"{advice}",
                             param_hint="'--image-size' / '--batch-size'")


def _in_bytes(size: float) -> str:
    """`size` bytes in MB below a GB, else in GB."""
    return f"{size / 1e6:,.0f} MB" if size < 1e9 else f"{size / 1e9:,.1f} GB"


def _found(root: Path, images: Scan) -> str:
    """'ds: 1,360 images in 17 classes; given split: train 1,020, test 340'."""
    line = f"{root.resolve()}: {len(images):,} images in {len(images.label_names)} classes"
    if images.label_file:
        line += f", labels from {Path(images.label_file.path).name}"
    counts = images.split_counts()
    if counts:
        line += "; given split: " + ", ".join(f"{name} {n:,}" for name, n in counts.items())
    return line


def _scan(root: Path, labels_file: Path | None = None,
          labels_columns: tuple[str, ...] | None = None) -> Scan:
    """The scan of `root` (through the label file, when one is given), its warnings shown
    first: also when it fails, since a warning (a class folder with no images) often
    says why."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if labels_file is not None:
                return scan_labelled(root, labels_file, labels_columns)
            return scan(root)
        finally:
            for warning in caught:
                click.echo(f"warning: {warning.message}", err=True)


def _run_on_cluster(spec: str, images: Scan, settings: Settings, output: Path,
                    options: RunOptions, dataset_name: str, command: str) -> Outcome:
    """The extraction's shards as tasks on the Dask cluster `spec`."""
    from extract.distributor import OnDask  # TensorFlow loads with the distributor
    from extract.extraction import run

    if local_workers(spec) is None:
        click.echo(f"connecting to the Dask scheduler at {spec}")
    with connect(spec) as client:
        distributor = OnDask(client)
        workers = distributor.workers()
        click.echo(f"shards run on {workers} Dask worker(s)"
                   + ("; none has joined yet, the shards wait for one" if not workers else ""))
        return run(images, settings, output, options=options, dataset_name=dataset_name,
                   distributor=distributor, log=click.echo, command=command)


def _interrupted(output: Path | None, force: bool) -> str:
    """What a Ctrl-C leaves: the earlier file untouched, and the shards already done."""
    if output is None:
        return "nothing was written; run the same command again"
    where = parts.folder(output)
    done = sorted(where.glob("*.h5")) if where.is_dir() else []
    kept = f"{output} is as it was; " if output.exists() else ""
    if force:
        return (f"{kept}the forced extraction stopped; run the command again "
                "to start it over")
    if not done:
        return f"{kept}no shard was finished yet; run the same command again"
    return (f"{kept}{len(done)} finished shard(s) are kept in {where}/; run the "
            "same command again to resume")


if __name__ == "__main__":
    main()
