"""Label new images with a model saved by `classify`: the library under the `predict` CLI.

The model bundle (classify.bundles) records the extractor of each features file it was
trained on (backbone, pooling, input size, preprocessing, weights identity). `predict`
rebuilds every extractor through extract's own reader and mapper, so decoding and
preprocessing are never implemented twice, concatenates their features in the
bundle's order, and refuses when the weights it would load are not the ones used in
training. TensorFlow is imported only once there are images to label. Nothing here
prints: start-up lines and progress go to the callbacks given.

In a notebook::

    from pathlib import Path
    from classify.bundles import load_bundle
    from predict.predicting import collect_images, predict

    bundle = load_bundle(Path("outputs/models/NAME"))
    results = predict(bundle, collect_images([Path("holiday_photos")]), top=1, log=print)
    [(p.path, p.classes[0], p.confidence) for p in results.predictions]
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from classify.report.records import ModelBundle
from common.errors import UserError
from extract.backbones import model_file, registry
from extract.featurefile import Extractor
from extract.scan import (
    IMAGE_EXTENSIONS,
    ScanError,
    find_images,
    scan,
    split_name,
    supported,
    unsupported_message,
)
from extract.settings import Settings

CONFIDENCE = ((0.9, "pretty sure"), (0.6, "somewhat sure"), (0.0, "unsure"))


class PredictError(UserError):
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


@dataclass(frozen=True)
class PredictionResults:
    """What one `predict` call found, in the order of the images given."""

    predictions: list[Prediction]  # the images that could be read
    skipped: list[Path]  # the images that could not (extract.scan.skip_reason says why)
    notes: list[str]  # why an extractor runs on another engine or precision than training's
    startup_s: float  # rebuilding the extractors, until the first image could go through
    prediction_s: float  # reading, extracting and ranking the images


def collect_images(paths: Sequence[Path], *, warn: Callable[[str], None] | None = None
                   ) -> list[Path]:
    """Image files named directly or found (recursively) in the folders named.

    A file named in a format not read stays in the list (``predict`` skips it and says
    why); when every file named is such a one, there is nothing to label and this
    refuses at once. Image files in folders in formats not read (a phone's .heic) are
    left out, and `warn` hears how many, as extract says it.
    """
    images: list[Path] = []
    for path in paths:
        if path.is_dir():
            unsupported: list[Path] = []
            images.extend(find_images(path, unsupported))
            if unsupported and warn is not None:
                warn(f"warning: {unsupported_message(unsupported, path)}")
        elif path.is_file():
            images.append(path)
        else:
            raise PredictError(f"{path}: no such file or folder")
    if not images:
        raise PredictError(f"no images found in {', '.join(map(str, paths))}")
    if not any(supported(image) for image in images):
        raise PredictError(f"{', '.join(map(str, images))}: not in an image format predict "
                           f"reads; supported: {', '.join(sorted(IMAGE_EXTENSIONS))}")
    return images


def training_note(folder: Path, bundle: ModelBundle) -> str | None:
    """A note when `folder` holds exactly the images the model's features were extracted
    from (the same dataset fingerprint: paths, sizes and times): most of them trained it,
    so a report against them overstates how it does on new images."""
    known = {fingerprint for fingerprint in bundle.dataset_fingerprints if fingerprint}
    if not known:
        return None
    accuracy = bundle.metrics.get("accuracy")
    held_out = ("" if accuracy is None
                else f"; its accuracy on its held-out test images was {accuracy:.4f}")
    if _fingerprint(folder) in known:
        return (f"{folder} holds the images this model was made from (the same files, sizes "
                "and dates as its training features): most of them trained it, so the report "
                f"below overstates how it does on new images{held_out}")
    # A split folder of those images (ds/train of ds): its train and val parts trained it.
    split = split_name(folder.name)
    if split in ("train", "val") and _fingerprint(folder.parent) in known:
        return (f"{folder} is the {split} split of the images this model was made from: they "
                f"trained it, so the report below overstates how it does on new "
                f"images{held_out}")
    return None


def _fingerprint(folder: Path) -> str | None:
    """The fingerprint extract gives `folder`'s images, or None where it reads none."""
    try:
        with warnings.catch_warnings():  # extract's notes about this folder are not ours
            warnings.simplefilter("ignore")
            return scan(folder).fingerprint
    except (ScanError, OSError):
        return None


def check_weights(extractor: dict[str, Any], weights: str | None) -> str:
    """The weights to rebuild the extractor with; refuse any that differ from training's."""
    trained = str(extractor["weights"])
    if trained == "random" and extractor.get("random_init") != registry.random_init("random"):
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
    identity = registry.weights_identity(weights)
    if identity != trained:
        raise PredictError(
            f"--weights {weights} is {identity}, but the model was trained "
            f"with {trained}; features would not match"
        )
    return weights


def model_files(extractors: Sequence[dict[str, Any]], given: Sequence[str | Path]
                ) -> list[str | None]:
    """For each extractor, the model file to rebuild it with (None: a built-in backbone):
    the one of `given` (--backbone-file) whose sha256 is the one recorded, else the file
    at the recorded path while it is still that file. Any other file is refused."""
    recorded = {str(e["weights"]): str(e["model_file"]) for e in extractors
                if e.get("model_file") is not None}
    by_sha: dict[str, str] = {}
    for path in given:
        if not Path(path).is_file():
            raise PredictError(f"--backbone-file {path}: no such file")
        sha = model_file.weights_identity(path)
        if sha not in recorded:
            came_from = (", ".join(f"{Path(f).name} ({s[:19]}...)" for s, f in recorded.items())
                         or "no model file: only built-in backbones")
            raise PredictError(f"--backbone-file {path}: {sha[:19]}... is not a file this "
                               f"model's features came from ({came_from})")
        by_sha[sha] = os.path.abspath(path)
    files: list[str | None] = []
    for extractor in extractors:
        sha = str(extractor["weights"])
        if extractor.get("model_file") is None or sha in by_sha:
            files.append(by_sha.get(sha))
            continue
        where = recorded[sha]
        if not Path(where).is_file():
            raise PredictError(f"the model's features came from {where}, which is not there; "
                               "pass that file with --backbone-file PATH")
        found = model_file.weights_identity(where)
        if found != sha:
            raise PredictError(f"{where} is {found[:19]}..., not the {sha[:19]}... the model's "
                               "features came from (the file changed); pass the file they "
                               "came from with --backbone-file PATH")
        files.append(where)
    return files


def feature_rows(
    images: list[Path], extractor: dict[str, Any], weights: str, batch_size: int, *,
    model_path: str | None = None, log: Callable[[str], None] | None = None,
    on_note: Callable[[str], None] | None = None,
) -> Iterator[tuple[int, np.ndarray | None]]:
    """(index, features) per image, None for an unreadable one: extract's own reader
    and mapper, with the rows rounded to the dtype the model was trained on.
    `model_path`: where the model file of a model-file extractor is (`model_files`).

    The mapper is built, and its reader sized against it, before this returns: the
    start-up is over by the time the first row is asked for. `log` hears the mapper's
    slow one-off work, `on_note` why the engine or precision differs from training's.
    """
    from extract import mapper as engines
    from extract import shard

    own = extractor.get("model_file") is not None  # a model file's scaling is its record's
    preprocessing = None if own else registry.preprocessing_name(extractor["backbone"])
    if not own and preprocessing != extractor["preprocessing"]:
        raise PredictError(f"the model's features were preprocessed by "
                           f"{extractor['preprocessing']}, this install uses {preprocessing}")
    dtype = np.dtype(extractor.get("dtype", "float32"))
    engine, precision, note = engines.for_prediction(extractor.get("engine"),
                                                     extractor.get("precision"),
                                                     openvino_only=own)
    if note and on_note is not None:
        on_note(note)
    settings = Settings.from_extractor(Extractor.from_attrs(extractor), weights=weights,
                                       engine=engine, precision=precision,
                                       model_file=model_path)
    mapper = engines.build_mapper(settings, log=log)
    if mapper.feature_dim != int(extractor["feature_dim"]):
        raise PredictError(
            f"rebuilt extractor gives {mapper.feature_dim} features, the "
            f"model expects {extractor['feature_dim']}"
        )
    files = [str(p) for p in images]
    shard.reader_threads(mapper, files, settings.input_size)  # kept for rows()
    rows = shard.rows(files, mapper, backbone=settings.backbone,
                      input_size=settings.input_size, batch_size=batch_size,
                      preprocessing=settings.preprocessing)
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


def predict(
    bundle: ModelBundle,
    images: Sequence[Path | str],
    *,
    top: int = 3,
    batch_size: int = 32,
    weights: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    log: Callable[[str], None] | None = None,
    backbone_files: Sequence[str | Path] = (),
) -> PredictionResults:
    """Rank the bundle's classes for each image, through the extractors it was trained on.

    Parameters
    ----------
    bundle : ModelBundle
        A model loaded by ``classify.bundles.load_bundle``; a fused model lists several
        extractors, whose features join in that order.
    images : sequence of Path or str
        The image files to label (``collect_images`` finds them in folders).
    top : int, default 3
        How many classes to keep per image, best first.
    batch_size : int, default 32
        Images per forward pass, and per call of the estimator.
    weights : str, optional
        The weights file the features were extracted with; needed, and checked to be the
        same file, only when the model was trained on features from such a file.
    progress : callable(done, total), optional
        Called with 0 once the extractors are built, then after each batch with the
        number of images done so far.
    log : callable(str), optional
        Hears the start-up lines as they happen: the mapper's slow one-off work, and each
        note (also kept in the result) as ``"note: ..."``.
    backbone_files : sequence of str or Path, optional
        Model files (.onnx, .xml) the features were extracted with, for a model trained on
        such features whose file is no longer at the path recorded; each must be the same
        file (its sha256 is checked).

    Returns
    -------
    PredictionResults
        The predictions of the images that could be read and the images skipped, both
        in the order given, the extractors' notes, and the start-up and prediction times.

    Raises
    ------
    PredictError
        No images, weights other than training's, or an extractor that cannot be rebuilt
        the same way (other UserErrors come from extract's mapper).
    """
    from classify.fusion import joined_rows  # h5py only once there are images to label

    started = time.perf_counter()
    paths = [Path(image) for image in images]
    if not paths:
        raise PredictError("no images to label")
    notes: list[str] = []

    def noted(note: str) -> None:
        notes.append(note)
        if log is not None:
            log(f"note: {note}")

    sources = model_files(bundle.extractors, backbone_files)
    streams = [feature_rows(paths, extractor, str(extractor["weights"]) if source
                            else check_weights(extractor, weights), batch_size,
                            model_path=source, log=log, on_note=noted)
               for extractor, source in zip(bundle.extractors, sources)]
    rows = joined_rows(streams)
    ready = time.perf_counter()
    predictions, skipped = _ranked(rows, paths, bundle, top, batch_size, progress)
    return PredictionResults(predictions, skipped, notes, ready - started,
                             time.perf_counter() - ready)


def _ranked(
    rows: Iterator[tuple[int, np.ndarray | None]], paths: list[Path], bundle: ModelBundle,
    top: int, batch_size: int, progress: Callable[[int, int], None] | None,
) -> tuple[list[Prediction], list[Path]]:
    """The rows through the estimator a batch at a time: (predictions, skipped images)."""
    label_names = list(bundle.label_names)
    predictions: list[Prediction] = []
    skipped: list[Path] = []
    if progress is not None:
        progress(0, len(paths))
    for indices, features, dropped in _batches(rows, batch_size):
        skipped += [paths[i] for i in dropped]
        if features is not None:
            for i, (classes, scores, kind) in zip(
                indices, top_k(bundle.estimator, features, label_names, top)
            ):
                predictions.append(Prediction(str(paths[i]), classes, scores, kind))
        if progress is not None:
            progress(len(predictions) + len(skipped), len(paths))
    return predictions, skipped


@dataclass(frozen=True)
class FolderTruth:
    """The class folder of each image that sits in one of the model's classes, and why
    any other image is left out of the report (None when none is)."""

    labels: dict[str, str]  # image path -> class folder name
    note: str | None


def _names(names: list[str], most: int = 6) -> str:
    shown = ", ".join(names[:most])
    return shown if len(names) <= most else f"{shown} and {len(names) - most} more"


def folder_truth(
    paths: Sequence[Path], images: list[Path], label_names: list[str]
) -> FolderTruth | None:
    """Each image's class folder, when one folder with sub-folders was named (None for
    files, several paths, or a folder of loose images: nothing to report against)."""
    if len(paths) != 1 or not paths[0].is_dir():
        return None
    root = paths[0]
    parts = {str(image): image.relative_to(root).parts for image in images}
    # A root of split folders (ds/ holding train/ and test/): the class folders are below.
    tops = {names[0] for names in parts.values() if len(names) >= 2}
    splits = bool(tops) and all(split_name(top) and top not in label_names for top in tops)
    depth = 1 if splits else 0
    folders = {path: names[depth] for path, names in parts.items() if len(names) >= depth + 2}
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


def folder_report(
    truth: FolderTruth, predictions: list[Prediction], label_names: list[str]
) -> tuple[int, str] | None:
    """How many predictions sit in a class folder of the model, and scikit-learn's
    classification report of their top class against that folder (None when none do).

    Parameters
    ----------
    truth : FolderTruth
        The class folders, from ``folder_truth``.
    predictions : list of Prediction
        The ``predictions`` of a ``predict`` call.
    label_names : list of str
        The model's classes, in the order the report lists them.

    Returns
    -------
    tuple of (int, str), or None
        The number of images scored and the report's text.
    """
    scored = [p for p in predictions if p.path in truth.labels]
    if not scored:
        return None
    from sklearn.metrics import classification_report

    actual = [truth.labels[p.path] for p in scored]
    predicted = [p.classes[0] for p in scored]
    present = sorted(set(actual) | set(predicted), key=label_names.index)
    return len(scored), classification_report(actual, predicted, labels=present,
                                              zero_division=0, digits=4)
