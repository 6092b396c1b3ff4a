"""The evaluation protocol: split once, search on the training part only, score once.

The split depends only on the labels, the seed and the test size, so every model and
every backbone evaluated on the same dataset is scored on the same held-out images.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from common.errors import UserError
from extract.featurefile import Features

# Two images to appear in every training fold, one for the test part.
MIN_IMAGES_PER_CLASS = 3
COPY_BLOCK_ROWS = 1024


class ProtocolError(UserError, ValueError):
    """The data cannot support the requested protocol; the message says which option to change."""


@dataclass
class Split:
    """The training and test parts of a feature file, labels re-encoded to 0..K-1."""

    X_train: np.ndarray  # memory-mapped: the search workers map it rather than copy it
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    train_rows: np.ndarray  # row numbers in the feature file
    test_rows: np.ndarray
    label_names: list[str]  # the classes kept; index = encoded label
    dropped: list[str] = field(default_factory=list)


def split_rows(y: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified train/test row numbers, a function of (y, test_size, seed) alone."""
    from sklearn.model_selection import train_test_split

    try:
        train, test = train_test_split(
            np.arange(len(y)), test_size=test_size, random_state=seed, stratify=y
        )
    except ValueError as exc:
        raise ProtocolError(
            f"--test-size {test_size}: cannot split {len(y)} images: {exc}"
        ) from None
    return np.sort(train), np.sort(test)


def kept_classes(
    y: np.ndarray, label_names: list[str], min_images: int = MIN_IMAGES_PER_CLASS
) -> tuple[np.ndarray, list[str]]:
    """Indices of the classes with at least `min_images` images, and names of the others."""
    counts = np.bincount(y, minlength=len(label_names))
    keep = np.flatnonzero(counts >= min_images)
    dropped = [f"{label_names[c]} ({counts[c]})" for c in np.flatnonzero(counts < min_images)]
    return keep, dropped


@dataclass
class LabelSplit:
    """The split decided from the labels alone; rows are numbers in the feature file."""

    train_rows: np.ndarray
    test_rows: np.ndarray
    y_train: np.ndarray  # encoded 0..K-1 over the kept classes
    y_test: np.ndarray
    label_names: list[str]  # the classes kept; index = encoded label
    dropped: list[str]


def split_labels(
    y: np.ndarray,
    label_names: list[str],
    test_size: float,
    seed: int,
    announce: Callable[[str], None],
    source: Path,
) -> LabelSplit:
    """Drop classes too small to evaluate, re-encode the rest, split stratified.

    Needs only the labels, so a client can split rows that workers will read.
    """
    keep, dropped = kept_classes(y, label_names)
    if dropped:
        announce(
            f"warning: dropping {len(dropped)} class(es) with fewer than "
            f"{MIN_IMAGES_PER_CLASS} images: {', '.join(dropped)}"
        )
    if len(keep) < 2:
        raise ProtocolError(
            f"{source}: fewer than 2 classes have {MIN_IMAGES_PER_CLASS} or more images; "
            "nothing to classify"
        )
    encode = np.full(len(label_names), -1, dtype=np.int64)
    encode[keep] = np.arange(len(keep))
    y_all = encode[y]
    rows = np.flatnonzero(y_all >= 0)
    train_pos, test_pos = split_rows(y_all[rows], test_size, seed)
    train_rows, test_rows = rows[train_pos], rows[test_pos]
    return LabelSplit(
        train_rows=train_rows,
        test_rows=test_rows,
        y_train=y_all[train_rows],
        y_test=y_all[test_rows],
        label_names=[label_names[c] for c in keep],
        dropped=dropped,
    )


def _rows_to_memmap(X: np.ndarray, rows: np.ndarray, path: Path) -> np.ndarray:
    """X[rows] written block by block to an .npy file, reopened read-only and unread.

    joblib hands an np.memmap to its workers by file name, so the search workers share
    these pages instead of receiving their own copy, and this process holds none of
    them until the refit reads them.
    """
    out = np.lib.format.open_memmap(path, mode="w+", dtype=X.dtype, shape=(len(rows), X.shape[1]))
    for start in range(0, len(rows), COPY_BLOCK_ROWS):
        out[start : start + COPY_BLOCK_ROWS] = X[rows[start : start + COPY_BLOCK_ROWS]]
    out.flush()
    del out
    return np.load(path, mmap_mode="r")


def split_features(
    features: Features,
    test_size: float,
    seed: int,
    announce: Callable[[str], None],
    scratch: Path,
) -> Split:
    """Drop classes too small to evaluate, split, and copy each part out once.

    The training part goes to a memory-mapped file in `scratch`; the full matrix is
    released afterwards (features.X becomes empty), so no row is held twice.
    """
    labels = split_labels(
        features.y, features.label_names, test_size, seed, announce, features.path
    )
    split = Split(
        X_train=_rows_to_memmap(features.X, labels.train_rows, scratch / "X_train.npy"),
        y_train=labels.y_train,
        X_test=features.X[labels.test_rows],
        y_test=labels.y_test,
        train_rows=labels.train_rows,
        test_rows=labels.test_rows,
        label_names=labels.label_names,
        dropped=labels.dropped,
    )
    features.X = np.empty((0, features.X.shape[1]), dtype=features.X.dtype)
    return split


def fold_count(split: Split | LabelSplit, cv: int, announce: Callable[[str], None]) -> int:
    """`cv`, reduced when the smallest class has fewer training images than folds."""
    counts = np.bincount(split.y_train, minlength=len(split.label_names))
    smallest = int(counts.min())
    name = split.label_names[int(counts.argmin())]
    if smallest < 2:
        raise ProtocolError(
            f"--test-size: class '{name}' keeps {smallest} training image(s) after the split; "
            "lower --test-size"
        )
    if smallest < cv:
        announce(
            f"note: --cv {cv} reduced to {smallest}: class '{name}' has only {smallest} "
            "training images"
        )
        return smallest
    return cv


def folds(n_splits: int, seed: int) -> Any:
    """The search's splitter, the same for every search (local or cluster)."""
    from sklearn.model_selection import StratifiedKFold

    return StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
