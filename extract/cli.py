"""`extract`: a folder of labelled images to a reusable HDF5 feature file."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import click

import extract.quiet  # noqa: F401 - first: keeps native log lines off the terminal
from common.dask_cluster import ClusterError, connect, local_workers
from common.errors import UserError, os_error_line
from extract import cache, parts
from extract.backbones import registry
from extract.plan import plan
from extract.scan import scan
from extract.settings import ENGINES, PRECISIONS, RunOptions, Settings

if TYPE_CHECKING:
    from extract.extraction import Outcome
    from extract.scan import Scan

DEFAULT_OUTPUTS = Path("outputs")
DEFAULT_DATASETS = Path("datasets")


def _positive(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    if value is not None and value <= 0:
        raise click.BadParameter(f"must be a positive number, got {value}")
    return value


def _cluster(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    try:
        if value is not None:
            local_workers(value)
    except ClusterError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def _list(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """--list: the feature cache, then exit (no --dataset needed)."""
    if not value or ctx.resilient_parsing:
        return
    folder = DEFAULT_OUTPUTS / "features"
    click.echo(f"feature files in {folder.resolve()}/:")
    click.echo(cache.table(cache.entries(folder)))
    ctx.exit()


EXAMPLES = """Examples:

\b
  extract --dataset flowers17 --backbone efficientnet_lite0   # weights need no network
  extract --dataset path/to/photos --backbone resnet50 --pooling avg
  extract --list-backbones                                   # backbones and feature sizes
"""


def _list_backbones(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """An eager flag: print the table and stop, before --dataset is required."""
    if value and not ctx.resilient_parsing:
        click.echo(registry.describe_backbones())
        ctx.exit()


@click.command(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXAMPLES)
@click.option("--list", "list_cache", is_flag=True, expose_value=False, is_eager=True,
              callback=_list, help="List the feature files in outputs/features/ and exit.")
@click.option("--list-backbones", is_flag=True, is_eager=True, expose_value=False,
              callback=_list_backbones,
              help="List the backbones with feature sizes and whether their weights download, "
                   "and exit.")
@click.option("--dataset", required=True, metavar="NAME_OR_PATH",
              help="A named dataset (caltech101, flowers17, animals; looked up in "
                   "datasets/NAME and downloaded when missing) or a folder with one "
                   "sub-folder of images per class.")
@click.option("--backbone", default=registry.DEFAULT_BACKBONE, show_default=True,
              metavar="NAME", help=f"ImageNet CNN: {', '.join(registry.BACKBONES)}.")
@click.option("--pooling", type=click.Choice(registry.POOLINGS),
              help="How feature maps become a vector [default: the backbone's own; "
                   "flatten for vgg16/vgg19, avg otherwise].")
@click.option("--weights", default="imagenet", show_default=True,
              metavar="imagenet|random|PATH",
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
    dataset: str,
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
) -> None:
    """Run a folder of labelled images once through a headless ImageNet CNN and keep
    the features in HDF5 for `classify`. Rerunning reuses a matching file, updates it
    when images were added or changed (only those go through the model), and resumes
    an interrupted run; other settings get a file of their own."""
    from extract import datasets as named
    from extract import mapper as engines
    from extract.extraction import default_output, run

    planned_output: Path | None = output
    try:
        spec = registry.get_spec(backbone)
        engine = engines.resolve_engine(engine)
        engines.check(engine, precision)
        settings = Settings(backbone, weights, pooling or spec.pooling,
                            image_size or spec.input_size, dtype, engine, precision)
        root = named.resolve_dataset(dataset, datasets_dir)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            images = scan(root)
        for warning in caught:
            click.echo(f"warning: {warning.message}", err=True)
        click.echo(f"{root.resolve()}: {len(images)} images in {len(images.label_names)} "
                   "classes")
        planned_output = output or default_output(DEFAULT_OUTPUTS.resolve() / "features",
                                                  Path(dataset).name, settings, plan(images))
        options = RunOptions(batch_size, buffer_size, shard_size,
                             None if compression == "none" else compression, force)
        if cluster:
            outcome = _run_on_cluster(cluster, images, settings, planned_output, options,
                                      Path(dataset).name)
        else:
            outcome = run(images, settings, planned_output, options=options,
                          dataset_name=Path(dataset).name, log=click.echo)
    except UserError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        click.echo(f"\n{_interrupted(planned_output, force)}", err=True)
        sys.exit(130)
    except OSError as exc:
        raise click.ClickException(os_error_line(exc, planned_output)) from None
    for path in outcome.skipped:
        click.echo(f"skipped (unreadable): {root / path}", err=True)
    click.echo(outcome.summary())


def _run_on_cluster(spec: str, images: Scan, settings: Settings, output: Path,
                    options: RunOptions, dataset_name: str) -> Outcome:
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
                   distributor=distributor, log=click.echo)


def _interrupted(output: Path | None, force: bool) -> str:
    """What a Ctrl-C leaves: the earlier file untouched, and the shards already done."""
    if output is None:
        return "interrupted before anything was written"
    where = parts.folder(output)
    done = sorted(where.glob("*.h5")) if where.is_dir() else []
    kept = f"{output} is as it was; " if output.exists() else ""
    if force:
        return (f"interrupted: {kept}the forced extraction stopped; run the command again "
                "to start it over")
    if not done:
        return f"interrupted: {kept}no shard was finished yet; run the same command again"
    return (f"interrupted: {kept}{len(done)} finished shard(s) are kept in {where}/; run the "
            "same command again to resume")


if __name__ == "__main__":
    main()
