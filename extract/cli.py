"""`extract`: a folder of labelled images to a reusable HDF5 feature file."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from extract import backbones, store
from extract.assemble import part_folder
from extract.errors import os_error_line
from extract.scan import ScanError, scan

if TYPE_CHECKING:
    from extract.runner import Outcome, Settings
    from extract.scan import Scan

DEFAULT_OUTPUTS = Path("outputs")
DEFAULT_DATASETS = Path("datasets")


def _positive(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    if value is not None and value <= 0:
        raise click.BadParameter(f"must be a positive number, got {value}")
    return value


def _cluster(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from extract.cluster import ClusterError, local_workers

    try:
        if value is not None:
            local_workers(value)
    except ClusterError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--dataset", required=True, metavar="NAME_OR_PATH",
              help="A named dataset (caltech101, flowers17, animals; looked up in "
                   "datasets/NAME and downloaded when missing) or a folder with one "
                   "sub-folder of images per class.")
@click.option("--backbone", default=backbones.DEFAULT_BACKBONE, show_default=True,
              metavar="NAME", help=f"ImageNet CNN: {', '.join(backbones.BACKBONES)}.")
@click.option("--pooling", type=click.Choice(backbones.POOLINGS),
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
              help="Rows kept in memory before one block is written to disk.")
@click.option("--dtype", type=click.Choice(["float32", "float16"]), default="float32",
              show_default=True, help="Storage type of the features.")
@click.option("--compression", type=click.Choice(["none", "lzf", "gzip"]), default="none",
              show_default=True,
              help="HDF5 compression of the features: lzf makes sparse (flatten) features "
                   "about 3.6x smaller but reads 2.3x slower (make bench, storage).")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Feature file [default: outputs/features/<dataset>-<backbone>-<pooling>.h5].")
@click.option("--datasets-dir", type=click.Path(file_okay=False, path_type=Path),
              default=DEFAULT_DATASETS, show_default=True, help="Where named datasets live.")
@click.option("--force", is_flag=True, help="Extract again even if a matching file exists.")
@click.option("--cluster", metavar="ADDRESS|local:N", callback=_cluster,
              help="Run shards on a Dask cluster: a scheduler address (tcp://host:8786) or "
                   "local:N for N worker processes here (local: one per GPU, else 1). "
                   "Workers need the images and --output folder at the same paths.")
@click.option("--shard-size", default=None, type=int, callback=_positive, metavar="N",
              help="Images per shard with --cluster; each shard is one part file and one "
                   "Dask task, retried on another worker if its worker dies "
                   "[default: 1024].")
def main(
    dataset: str,
    backbone: str,
    pooling: str | None,
    weights: str,
    image_size: int | None,
    batch_size: int,
    buffer_size: int,
    dtype: str,
    compression: str,
    output: Path | None,
    datasets_dir: Path,
    force: bool,
    cluster: str | None,
    shard_size: int | None,
) -> None:
    """Run a folder of labelled images once through a headless ImageNet CNN and keep
    the features in HDF5 for `classify`. Rerunning reuses a matching file; an
    interrupted run resumes where it stopped."""
    from extract import datasets as named
    from extract.cluster import ClusterError
    from extract.runner import Settings, run

    try:
        spec = backbones.get_spec(backbone)
        pooling = pooling or spec.pooling
        # Named before any slow step, so a Ctrl-C at any moment can say where rows go.
        output = output or (
            DEFAULT_OUTPUTS / "features" / store.feature_file_name(dataset, backbone, pooling)
        )
        root = named.resolve_dataset(dataset, datasets_dir)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            images = scan(root)
        for warning in caught:
            click.echo(f"warning: {warning.message}", err=True)
        settings = Settings(backbone, weights, pooling, image_size or spec.input_size, dtype)
        click.echo(f"{root}: {len(images)} images in {len(images.label_names)} classes")
        options = {"batch_size": batch_size, "buffer_size": buffer_size, "force": force,
                   "dataset_name": Path(dataset).name, "log": click.echo,
                   "compression": None if compression == "none" else compression}
        if cluster:
            outcome = _run_on_cluster(cluster, images, settings, output, shard_size, options)
        elif shard_size is not None:
            raise click.UsageError("--shard-size needs --cluster")
        else:
            outcome = run(images, settings, output, **options)
    except (backbones.BackboneError, named.DatasetError, ScanError,
            store.FeatureFileError, ClusterError) as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        written = _rows_written(output, cluster=bool(cluster))
        where = f"{part_folder(output)}/" if cluster and output else output
        click.echo(f"\ninterrupted: {written} images are safely in {where}; "
                   "run the same command again to resume", err=True)
        sys.exit(130)
    except OSError as exc:
        raise click.ClickException(os_error_line(exc, output)) from None
    for path in outcome.skipped:
        click.echo(f"skipped (unreadable): {path}", err=True)
    click.echo(outcome.summary())


def _run_on_cluster(spec: str, images: Scan, settings: Settings, output: Path,
                    shard_size: int | None, options: dict[str, Any]) -> Outcome:
    """The extraction as shards on the Dask cluster `spec` (see extract.distributor)."""
    from extract.cluster import connect, local_workers
    from extract.distributor import DEFAULT_SHARD_SIZE, run_on_cluster

    if local_workers(spec) is None:
        click.echo(f"connecting to the Dask scheduler at {spec}")
    with connect(spec) as client:
        return run_on_cluster(client, images, settings, output,
                              shard_size=shard_size or DEFAULT_SHARD_SIZE, **options)


def _rows_written(output: Path | None, *, cluster: bool = False) -> int:
    if cluster and output:
        from extract.distributor import rows_in_parts

        return rows_in_parts(output)
    try:
        return int(store.read_attrs(output).get("n_written", 0)) if output else 0
    except store.FeatureFileError:
        return 0


if __name__ == "__main__":
    main()
