"""`inspect`: what the cached features say about the data.

Only click loads at import time (`--help` is instant); TensorFlow is never imported.
"""

from __future__ import annotations

from pathlib import Path

import click

from common.dask_cluster import ClusterError, local_workers
from common.errors import UserError, os_error_line
from common.interrupt import exit_interrupted, unsaved_note

KINDS = (("leakage", "groups straddle the split"), ("exact_copy", "groups of exact copies"),
         ("near_duplicate", "groups of near-duplicates"), ("label_error", "likely label errors"),
         ("outlier", "outliers"))


def _feature_file(outputs: Path, features: Path | None, dataset: str | None,
                  backbone: str | None, pooling: str | None, image_size: int | None) -> Path:
    """The file the options name, found as classify finds it; the newest without any."""
    from classify.locate import LocateError, UnknownNameError, by_dataset, check_names, newest

    folder = outputs / "features"
    if features is not None:
        if dataset or backbone or pooling or image_size:
            raise click.UsageError("give either --features or --dataset/--backbone, not both")
        return features
    try:
        if dataset or backbone:
            if not (dataset and backbone):
                raise click.UsageError("--dataset and --backbone go together")
            check_names(folder, [backbone], [pooling] if pooling else [])
            return by_dataset(folder, dataset, backbone, pooling, image_size)
        if pooling or image_size:
            raise click.UsageError("--pooling and --image-size need --dataset and --backbone")
        path = newest(folder)
    except UnknownNameError as exc:
        raise click.BadParameter(str(exc), param_hint=f"'{exc.option}'") from None
    except LocateError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"using the newest complete feature file: {path}")
    return path


def _check_cluster(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        try:
            local_workers(value)
        except ClusterError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


EXAMPLES = """Examples:

\b
  inspect                                    # the newest feature file
  inspect --dataset flowers17 --backbone efficientnet_lite0
  inspect --features outputs/features/x.h5 --seed 1 --test-size 0.2
"""


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
               epilog=EXAMPLES)
@click.option("--features", type=click.Path(dir_okay=False, path_type=Path),
              help="Feature file (.h5) written by extract. Default: the newest complete file "
              "in OUTPUTS/features.")
@click.option("--dataset", help="Dataset name (or folder); with --backbone finds its feature "
              "file in OUTPUTS/features.")
@click.option("--backbone", help="Backbone the features came from (with --dataset).")
@click.option("--pooling", help="Pooling of the features (with --dataset), to narrow down.")
@click.option("--image-size", type=click.IntRange(min=1),
              help="Input size the features were extracted at (with --dataset), to narrow down.")
@click.option("--seed", type=int, default=42, show_default=True,
              help="Seed of classify's split (for leakage), the folds and the map.")
@click.option("--test-size", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=0.25, show_default=True,
              help="classify's test fraction, for the leakage check (a file with its own "
              "split uses that).")
@click.option("--cluster", metavar="ADDRESS|local:N", callback=_check_cluster,
              help="Run the neighbour search on a Dask cluster, block by block: local:N "
              "starts N worker processes here, anything else is a scheduler address.")
@click.option("--outputs", type=click.Path(file_okay=False, path_type=Path),
              default=Path("outputs"), show_default=True,
              help="Output root: features/ is read; inspect/<features-stem>/ is written.")
def main(features: Path | None, dataset: str | None, backbone: str | None, pooling: str | None,
         image_size: int | None, seed: int, test_size: float, cluster: str | None,
         outputs: Path) -> None:
    """Find what is wrong with the data in a feature file: copies on both sides of the
    train/test split (leakage), exact copies and near-duplicates, likely label errors,
    outliers, and a 2-D map, on one self-contained page.

    Writes OUTPUTS/inspect/<features-stem>/index.html, findings.json and findings.csv,
    and links the page from OUTPUTS/index.html. Features that separate the classes poorly
    (the label check's out-of-fold balanced accuracy below 0.8) get a warning that the
    findings are unreliable.
    """
    from classify.inspection.run import InspectConfig, run  # scikit-learn, h5py, cleanlab

    path = _feature_file(outputs, features, dataset, backbone, pooling, image_size)
    config = InspectConfig(features=path, outputs=outputs, seed=seed, test_size=test_size,
                           cluster=cluster)
    try:
        result = run(config, announce=click.echo)
    except UserError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(os_error_line(exc, outputs)) from None
    except KeyboardInterrupt:  # the new folder is swapped in last: the earlier one is kept
        exit_interrupted(unsaved_note([outputs / "inspect"]))
    inspection = result.inspection
    counts = inspection.counts()
    click.echo(f"inspected {path}: {inspection.n_images} images, "
               f"{len(inspection.label_names)} classes, in {sum(result.timings.values()):.1f} s")
    for kind, meaning in KINDS:
        images = len({row for f in inspection.of_kind(kind) for row in f.rows})
        shown = f"{counts[kind]:6d} {meaning}"
        click.echo(f"  {shown}" + (f" ({images} images)" if kind in
                                   ("leakage", "exact_copy", "near_duplicate") else ""))
    click.echo(f"  split: {inspection.settings['split']}")
    click.echo(f"page     {result.page} (findings.json and findings.csv beside it)")


if __name__ == "__main__":
    main()
