"""The `predict` command: parse, call predict.predicting, print, write the CSV.

Every UserError (and OSError) becomes a one-line click error, a --model that names no
model a usage error, and Ctrl-C one `interrupted:` line; the work itself, and everything
a notebook would reuse, is in predict.predicting.
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Iterable
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

import common.quiet  # noqa: F401 - first: keeps native log lines off the terminal
from classify.bundles import METADATA, load_bundle
from common.errors import UserError, os_error_line
from common.interrupt import AGAIN, exit_interrupted, is_new
from common.text import did_you_mean, timings
from extract.scan import skip_reason
from predict.predicting import (
    FolderTruth,
    PredictError,
    Prediction,
    PredictionResults,
    collect_images,
    folder_report,
    folder_truth,
    predict,
    training_note,
)

if TYPE_CHECKING:
    from tqdm import tqdm


def check_model(path: Path) -> None:
    """Refuse a --model that names no model as a usage error, before anything loads; a
    run's report folder points to the model saved beside it. What a file holds is
    load_bundle's to judge."""
    if not path.exists():
        raise click.BadParameter(f"{path}: no such model; {_where_models_are(path)}",
                                 param_hint="'--model'")
    if not path.is_dir() or (path / METADATA).is_file():
        return
    model = path.parent.parent / "models" / path.name
    if path.parent.name == "reports" and (model / METADATA).is_file():
        raise click.BadParameter(f"{path} is a run's report folder; its model is {model}",
                                 param_hint="'--model'")
    raise click.BadParameter(f"{path}: no {METADATA}; not a model saved by classify "
                             "(expected a folder in outputs/models/)", param_hint="'--model'")


def _where_models_are(path: Path) -> str:
    """Where the saved models are, with the close names when `path` is in that folder."""
    folder = path.parent
    if folder.name != "models" or not folder.is_dir():
        return "classify saves its models to outputs/models/<run>/"
    names = sorted(entry.name for entry in folder.iterdir() if entry.is_dir())
    return (f"{did_you_mean(path.name, names)}the models classify saved are the folders "
            f"in {folder}/")


def check_writable(output: Path) -> None:
    """Refuse an --output that could not be written, before any work is done: its folder
    takes the file written aside (write_csv)."""
    folder = output.parent  # a folder as --output is click's to refuse (dir_okay=False)
    if not folder.is_dir():
        raise PredictError(f"--output {output}: no folder {folder}; create it or pick "
                           "another path")
    if not os.access(folder, os.W_OK) or (output.exists() and not os.access(output, os.W_OK)):
        raise PredictError(f"--output {output}: not writable; pick another path")


def write_csv(path: Path, predictions: Iterable[Prediction], k: int) -> None:
    """One row per image: its top k classes and scores (cells left blank past its last).
    Written aside and renamed over `path` once whole, so that a Ctrl-C or a full disk
    leaves an earlier file as it was."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with open(partial, "w", newline="", encoding="utf-8") as f:
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
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _err(line: str) -> None:
    click.echo(line, err=True)


class _ProgressBar:
    """predict's progress as a tqdm bar, opened at the first report so that it starts
    on a line of its own after the start-up lines."""

    def __init__(self) -> None:
        self._bar: tqdm | None = None

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit="img", desc="predict", dynamic_ncols=True,
                             disable=None)  # None: hidden off a terminal
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _show_predictions(results: PredictionResults, images: int, loading_s: float) -> None:
    """One line per image, the skipped ones, and the summary; refuse when none was read."""
    for p in results.predictions:
        shown = ", ".join(f"{c} {s:.4f}" for c, s in zip(p.classes, p.scores))
        tail = f" ({p.confidence})" if p.kind == "probability" else " (decision scores)"
        click.echo(f"{p.path}: {shown}{tail}")
    for path in results.skipped:
        click.echo(f"skipped ({skip_reason(path)}): {path}", err=True)
    startup, working = loading_s + results.startup_s, results.prediction_s
    # The rate counts the skipped images too, as the bar does; with none labelled, none.
    spent = (timings(startup + working, startup, working, images, "prediction")
             if results.predictions else f"{startup + working:.1f} s")
    click.echo(f"{_count(len(results.predictions), 'image')} labelled, "
               f"{len(results.skipped)} skipped; {spent}")
    if not results.predictions:
        if len(results.skipped) == 1:
            raise click.ClickException("the image could not be read; see the skipped line above")
        raise click.ClickException(f"none of the {len(results.skipped)} images could be read; "
                                   "see the skipped lines above")


def _show_folder_report(truth: FolderTruth, predictions: list[Prediction],
                        label_names: list[str], seen_in_training: str | None) -> None:
    if truth.note:
        click.echo(f"\nnote: {truth.note}")
    if seen_in_training:
        click.echo(f"\nnote: {seen_in_training}")
    report = folder_report(truth, predictions, label_names)
    if report is not None:
        scored, text = report
        click.echo(f"\nagainst the class folders ({scored} images):")
        click.echo(text)


EXAMPLES = """Examples:

\b
  predict --model outputs/models/NAME photo.jpg
  predict --model outputs/models/NAME holiday_photos/ --top 1 --output labels.csv
  predict --model outputs/models/NAME test_folder/   # class sub-folders: a report too
"""


@click.command(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXAMPLES)
@click.option("--model", "model_path", required=True, type=click.Path(path_type=Path),
              help="A model saved by classify (a folder in outputs/models/).")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--top", default=3, show_default=True, type=click.IntRange(min=1),
              help="How many classes to show per image.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the predictions to this CSV file.")
@click.option("--weights", metavar="PATH",
              help="The weights file the features were extracted with (only when the model was "
              "trained on such features; it must be the same file).")
@click.option("--backbone-file", "backbone_files", multiple=True,
              type=click.Path(dir_okay=False, path_type=Path), metavar="MODEL.onnx",
              help="The model file (.onnx, .xml) the features were extracted with, when it is no "
              "longer at the path recorded (it must be the same file); once per file.")
@click.option("--trust", is_flag=True,
              help="Load an old pickled model (.joblib). Pickles run whatever code they hold: "
              "only for files you made or whose maker you trust.")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1),
              help="Images per forward pass.")
def main(
    model_path: Path,
    paths: tuple[Path, ...],
    top: int,
    output: Path | None,
    weights: str | None,
    trust: bool,
    batch_size: int,
    backbone_files: tuple[Path, ...] = (),
) -> None:
    """Label images (files or folders, searched recursively) with a trained classifier.

    When a single folder is given whose sub-folders are named after the model's
    classes, a classification report against those folders follows.
    """
    try:
        _label(model_path, paths, top=top, output=output, weights=weights, trust=trust,
               batch_size=batch_size, backbone_files=backbone_files)
    except KeyboardInterrupt:
        exit_interrupted(_interrupted(output))


def _interrupted(output: Path | None) -> str:
    """What a Ctrl-C leaves: the CSV is renamed into place whole at the end, or not at all."""
    if output is None or not output.exists():
        return f"nothing was written; {AGAIN}"
    if is_new(output):
        return f"{output} holds every prediction; only the report after it was cut short"
    return f"{output} is as it was; {AGAIN}"


def _label(model_path: Path, paths: tuple[Path, ...], *, top: int, output: Path | None,
           weights: str | None, trust: bool, batch_size: int,
           backbone_files: tuple[Path, ...]) -> None:
    """The command's work: check, load, predict, print, write the CSV, report."""
    started = time.perf_counter()
    check_model(model_path)  # a usage error, before the images are looked for
    try:
        if output is not None:
            check_writable(output)  # before the model loads and the images go through it
        images = collect_images(paths, warn=_err)  # the inputs, too, before the model
        bundle = load_bundle(model_path, trust=trust, warn=_err)
        loading_s = time.perf_counter() - started
        with closing(_ProgressBar()) as bar:
            results = predict(bundle, images, top=top, batch_size=batch_size, weights=weights,
                              progress=bar, log=_err, backbone_files=backbone_files)
    except UserError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(os_error_line(exc, model_path)) from None
    _show_predictions(results, len(images), loading_s)
    if output:
        try:
            write_csv(output, results.predictions, top)
        except OSError as exc:
            raise click.ClickException(os_error_line(exc, output)) from None
        click.echo(f"predictions written to {output}")
    truth = folder_truth(paths, images, list(bundle.label_names))
    if truth is not None:
        _show_folder_report(truth, results.predictions, list(bundle.label_names),
                            training_note(paths[0], bundle))


if __name__ == "__main__":
    main()
