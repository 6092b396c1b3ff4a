"""`extract`: a folder of labelled images to a reusable HDF5 feature file."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import click

from extract import backbones, store
from extract.scan import ScanError, scan

DEFAULT_OUTPUTS = Path("outputs")
DEFAULT_DATASETS = Path("datasets")


def _positive(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    if value is not None and value <= 0:
        raise click.BadParameter(f"must be a positive number, got {value}")
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
) -> None:
    """Run a folder of labelled images once through a headless ImageNet CNN and keep
    the features in HDF5 for `classify`. Rerunning reuses a matching file; an
    interrupted run resumes where it stopped."""
    from extract import datasets as named
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
        outcome = run(images, settings, output, batch_size=batch_size,
                      buffer_size=buffer_size, force=force, dataset_name=Path(dataset).name,
                      compression=None if compression == "none" else compression,
                      log=click.echo)
    except (backbones.BackboneError, named.DatasetError, ScanError,
            store.FeatureFileError) as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        written = _rows_written(output)
        click.echo(f"\ninterrupted: {written} images are safely in {output}; "
                   "run the same command again to resume", err=True)
        sys.exit(130)
    except OSError as exc:
        raise click.ClickException(f"{exc.filename or output}: {exc.strerror or exc}") from None
    for path in outcome.skipped:
        click.echo(f"skipped (unreadable): {path}", err=True)
    click.echo(outcome.summary())


def _rows_written(output: Path | None) -> int:
    try:
        return int(store.read_attrs(output).get("n_written", 0)) if output else 0
    except store.FeatureFileError:
        return 0


if __name__ == "__main__":
    main()
