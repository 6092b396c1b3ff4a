"""`predict`: label new images with a model saved by `classify`.

The model bundle (classify.bundles) records the extractor of each features file it was
trained on (backbone, pooling, input size, preprocessing, weights identity). `predict`
rebuilds every extractor through extract's own reader and mapper, so decoding and
preprocessing are never implemented twice, concatenates their features in the
bundle's order, and refuses when the weights it would load are not the ones used in
training. TensorFlow is imported only once there are images to label.
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import numpy as np

import extract.quiet  # noqa: F401 - first: keeps native log lines off the terminal
from classify.bundles import BundleError, load_bundle
from extract.errors import os_error_line
from extract.scan import find_images, skip_reason

CONFIDENCE = ((0.9, "pretty sure"), (0.6, "somewhat sure"), (0.0, "unsure"))


class PredictError(Exception):
    """A model or input that cannot be used; the message names it."""


@dataclass(frozen=True)
class Prediction:
    """The top classes of one image, best first."""

    path: str
    classes: list[str]
    scores: list[float]
    kind: str  # "probability" or "decision score"

    @property
    def confidence(self) -> str:
        if self.kind != "probability":
            return "n/a"
        return next(word for bound, word in CONFIDENCE if self.scores[0] >= bound)


def check_writable(output: Path) -> None:
    """Refuse an --output that could not be written, before any work is done."""
    folder = output.parent  # a folder as --output is click's to refuse (dir_okay=False)
    if not folder.is_dir():
        raise PredictError(f"--output {output}: no folder {folder}; create it or pick "
                           "another path")
    if not os.access(output if output.exists() else folder, os.W_OK):
        raise PredictError(f"--output {output}: not writable; pick another path")


def collect_images(paths: tuple[Path, ...]) -> list[Path]:
    """Image files named directly or found (recursively) in the folders named."""
    images: list[Path] = []
    for path in paths:
        if path.is_dir():
            images.extend(find_images(path))
        elif path.is_file():
            images.append(path)
        else:
            raise PredictError(f"{path}: no such file or folder")
    if not images:
        raise PredictError(f"no images found in {', '.join(map(str, paths))}")
    return images


def check_weights(extractor: dict[str, Any], weights: str | None) -> str:
    """The weights to rebuild the extractor with; refuse any that differ from training's."""
    from extract.backbones import random_init, weights_identity

    trained = str(extractor["weights"])
    if trained == "random" and extractor.get("random_init") != random_init("random"):
        raise PredictError(
            "the model was trained on --weights random features of an older offtheshelf, "
            "whose random network this version draws differently; extract and classify "
            "again to predict with it"
        )
    if weights is None:
        if trained.startswith("sha256:"):
            raise PredictError(
                "the model was trained on features from a weights file "
                f"({trained}); pass that file with --weights PATH"
            )
        weights = trained
    identity = weights_identity(weights)
    if identity != trained:
        raise PredictError(
            f"--weights {weights} is {identity}, but the model was trained "
            f"with {trained}; features would not match"
        )
    return weights


def feature_rows(
    images: list[Path], extractor: dict[str, Any], weights: str, batch_size: int
) -> Iterator[tuple[int, np.ndarray | None]]:
    """(index, features) per image, None for an unreadable one: extract's own reader
    and mapper, with the rows rounded to the dtype the model was trained on.

    The mapper is built, and its reader sized against it, before this returns: the
    start-up is over by the time the first row is asked for.
    """
    from extract import backbones, engines, shard_runner
    from extract.settings import Settings

    preprocessing = backbones.preprocessing_name(extractor["backbone"])
    if preprocessing != extractor["preprocessing"]:
        raise PredictError(f"the model's features were preprocessed by "
                           f"{extractor['preprocessing']}, this install uses {preprocessing}")
    dtype = np.dtype(extractor.get("dtype", "float32"))
    engine, precision, note = engines.for_prediction(extractor.get("engine"),
                                                     extractor.get("precision"))
    if note:
        click.echo(f"note: {note}", err=True)
    settings = Settings(extractor["backbone"], weights, extractor["pooling"],
                        int(extractor["input_size"]), dtype.name, engine, precision)
    mapper = engines.build_mapper(settings, log=lambda line: click.echo(line, err=True))
    if mapper.feature_dim != int(extractor["feature_dim"]):
        raise PredictError(
            f"rebuilt extractor gives {mapper.feature_dim} features, the "
            f"model expects {extractor['feature_dim']}"
        )
    files = [str(p) for p in images]
    shard_runner.reader_threads(mapper, files, settings.input_size)  # kept for rows()
    rows = shard_runner.rows(files, mapper, backbone=settings.backbone,
                             input_size=settings.input_size, batch_size=batch_size)
    return _rounded(rows, dtype)


def _rounded(rows: Iterator[tuple[int, np.ndarray | None]], dtype: np.dtype
             ) -> Iterator[tuple[int, np.ndarray | None]]:
    """Trained on float16 rows: round these the same way before the model sees them."""
    for index, row in rows:
        yield index, None if row is None else row.astype(dtype).astype(np.float32)


def _batches(rows: Iterator[tuple[int, np.ndarray | None]], size: int
             ) -> Iterator[tuple[list[int], np.ndarray | None, list[int]]]:
    """Rows grouped for the estimator: (indices, features, unreadable indices)."""
    indices: list[int] = []
    features: list[np.ndarray] = []
    unreadable: list[int] = []
    for index, row in rows:
        if row is None:
            unreadable.append(index)
        else:
            indices.append(index)
            features.append(row)
        if len(indices) + len(unreadable) >= size:
            yield indices, np.stack(features) if features else None, unreadable
            indices, features, unreadable = [], [], []
    if indices or unreadable:
        yield indices, np.stack(features) if features else None, unreadable


def top_k(
    estimator: Any, X: np.ndarray, label_names: list[str], k: int
) -> list[tuple[list[str], list[float], str]]:
    """Top-k class names and scores per row: probabilities when the model has them."""
    if hasattr(estimator, "predict_proba"):
        scores, kind = estimator.predict_proba(X), "probability"
    else:
        scores, kind = estimator.decision_function(X), "decision score"
        if scores.ndim == 1:  # binary: one margin for the second class
            scores = np.column_stack([-scores, scores])
    names = [label_names[int(c)] for c in estimator.classes_]
    order = np.argsort(-scores, axis=1)[:, :k]
    return [
        ([names[j] for j in row], [float(scores[i, j]) for j in row], kind)
        for i, row in enumerate(order)
    ]


def write_csv(path: Path, predictions: list[Prediction], k: int) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        header = ["path"]
        for rank in range(1, k + 1):
            header += [f"class_{rank}", f"score_{rank}"]
        writer.writerow([*header, "score_kind", "confidence"])
        for p in predictions:
            cells: list[Any] = [p.path]
            for name, score in zip(p.classes, p.scores):
                cells += [name, f"{score:.6g}"]
            cells += [""] * (len(header) - len(cells))
            writer.writerow([*cells, p.kind, p.confidence])


@dataclass(frozen=True)
class FolderTruth:
    """The class folder of each image that sits in one of the model's classes, and why
    any other image is left out of the report (None when none is)."""

    labels: dict[str, str]  # image path -> class folder name
    note: str | None


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _names(names: list[str], most: int = 6) -> str:
    shown = ", ".join(names[:most])
    return shown if len(names) <= most else f"{shown} and {len(names) - most} more"


def folder_truth(
    paths: tuple[Path, ...], images: list[Path], label_names: list[str]
) -> FolderTruth | None:
    """Each image's class folder, when one folder with sub-folders was named (None for
    files, several paths, or a folder of loose images: nothing to report against)."""
    if len(paths) != 1 or not paths[0].is_dir():
        return None
    root = paths[0]
    folders = {str(image): image.relative_to(root).parts[0] for image in images
               if len(image.relative_to(root).parts) >= 2}
    if not folders:
        return None
    known = {path: name for path, name in folders.items() if name in label_names}
    unknown = [f"{name}/" for name in sorted(set(folders.values()) - set(label_names))]
    if not unknown:
        return FolderTruth(known, None)
    classes = f"the model knows {_names(label_names)}"
    if not known:
        return FolderTruth(known, f"no report against the class folders: {_names(unknown)} in "
                                  f"{root} are not classes of this model ({classes})")
    return FolderTruth(known, f"{len(folders) - len(known)} image(s) in {_names(unknown)} left "
                              f"out of the report: not classes of this model ({classes})")


EXAMPLES = """Examples:

\b
  predict --model outputs/models/NAME photo.jpg
  predict --model outputs/models/NAME holiday_photos/ --top 1 --output labels.csv
  predict --model outputs/models/NAME test_folder/   # class sub-folders: a report too
"""


@click.command(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXAMPLES)
@click.option(
    "--model",
    "model_path",
    required=True,
    type=click.Path(path_type=Path),
    help="A model saved by classify (a folder in outputs/models/).",
)
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--top",
    default=3,
    show_default=True,
    type=click.IntRange(min=1),
    help="How many classes to show per image.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the predictions to this CSV file.",
)
@click.option(
    "--weights",
    metavar="PATH",
    help="The weights file the features were extracted with (only when the "
    "model was trained on such features; it must be the same file).",
)
@click.option(
    "--trust",
    is_flag=True,
    help="Load an old pickled model (.joblib). Pickles run whatever code they hold: only "
    "for files you made or whose maker you trust.",
)
@click.option(
    "--batch-size",
    default=32,
    show_default=True,
    type=click.IntRange(min=1),
    help="Images per forward pass.",
)
def main(
    model_path: Path,
    paths: tuple[Path, ...],
    top: int,
    output: Path | None,
    weights: str | None,
    trust: bool,
    batch_size: int,
) -> None:
    """Label images (files or folders, searched recursively) with a trained classifier.

    When a single folder is given whose sub-folders are named after the model's
    classes, a classification report against those folders follows.
    """
    from tqdm import tqdm

    from classify.fusion import FusionError, joined_rows
    from extract.backbones import BackboneError
    from extract.engines import EngineError
    from extract.runner import timings

    started = time.perf_counter()
    try:
        if output is not None:
            check_writable(output)  # before the model loads and the images go through it
        bundle = load_bundle(model_path, trust=trust, warn=lambda line: click.echo(line, err=True))
        images = collect_images(paths)
        # A fused model lists several extractors; their features join in that order.
        streams = [feature_rows(images, extractor, check_weights(extractor, weights),
                                batch_size) for extractor in bundle.extractors]
        label_names = list(bundle.label_names)
        predictions: list[Prediction] = []
        unreadable: list[Path] = []
        rows = joined_rows(streams)
        ready = time.perf_counter()
        with tqdm(total=len(images), unit="img", desc="predict", dynamic_ncols=True,
                  disable=None) as bar:  # None: hidden off a terminal
            for indices, features, dropped in _batches(rows, batch_size):
                unreadable += [images[i] for i in dropped]
                if features is not None:
                    for i, (classes, scores, kind) in zip(
                        indices, top_k(bundle.estimator, features, label_names, top)
                    ):
                        predictions.append(Prediction(str(images[i]), classes, scores, kind))
                bar.update(len(indices) + len(dropped))
        finished = time.perf_counter()
    except (PredictError, BundleError, BackboneError, EngineError, FusionError) as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(os_error_line(exc, model_path)) from None
    for p in predictions:
        shown = ", ".join(f"{c} {s:.4f}" for c, s in zip(p.classes, p.scores))
        tail = f" ({p.confidence})" if p.kind == "probability" else " (decision scores)"
        click.echo(f"{p.path}: {shown}{tail}")
    for path in unreadable:
        click.echo(f"skipped ({skip_reason(path)}): {path}", err=True)
    startup, working = ready - started, finished - ready
    click.echo(f"{_count(len(predictions), 'image')} labelled, {len(unreadable)} skipped; "
               f"{timings(startup + working, startup, working, len(images), 'prediction')}")
    if not predictions:
        if len(unreadable) == 1:
            raise click.ClickException("the image could not be read; see the skipped line above")
        raise click.ClickException(f"none of the {len(unreadable)} images could be read; "
                                   "see the skipped lines above")
    if output:
        try:
            write_csv(output, predictions, top)
        except OSError as exc:
            raise click.ClickException(os_error_line(exc, output)) from None
        click.echo(f"predictions written to {output}")
    truth = folder_truth(paths, images, label_names)
    if truth is None:
        return
    if truth.note:
        click.echo(f"\nnote: {truth.note}")
    scored = [p for p in predictions if p.path in truth.labels]
    if scored:
        from sklearn.metrics import classification_report

        actual = [truth.labels[p.path] for p in scored]
        predicted = [p.classes[0] for p in scored]
        present = sorted(set(actual) | set(predicted), key=label_names.index)
        click.echo(f"\nagainst the class folders ({len(scored)} images):")
        click.echo(classification_report(actual, predicted, labels=present, zero_division=0,
                                         digits=4))


if __name__ == "__main__":
    main()
