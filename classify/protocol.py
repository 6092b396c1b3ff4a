"""The evaluation protocol: split once, search on the training part only, score once.

Three ways to split, each depending only on the labels (and the file's given split),
the seed and the options, so every model and every backbone evaluated on the same
dataset is scored on the same held-out images:

- the split given with the data (split folders, a label file's split column): search
  on `train`, with `val` as the one validation fold where there is one; test on `test`;
- a stratified random split (`--test-size`), where no split was given or `--split random`;
- N training images per class and up to M test images of the others (`--train-per-class`),
  the protocol papers report on Caltech-101.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from common.errors import UserError
from extract.featurefile import FeatureHeader, Features, split_source

# Two images to appear in every training fold, one for the test part.
MIN_IMAGES_PER_CLASS = 3
COPY_BLOCK_ROWS = 1024


class ProtocolError(UserError, ValueError):
    """The data cannot support the requested protocol; the message says which option to change."""


class ProtocolUsageError(ProtocolError):
    """Protocol options that the file's header alone rules out (whether it has a given
    split): a usage error, found before any row is read."""


# Per protocol: the option that decides the training part, and the way out when a class
# keeps too few training images for the folds.
TOO_FEW_TRAINING = {
    "random": ("--test-size", "lower --test-size"),
    "given": ("--split given", "add training images of it, or pass --split random"),
    "per_class": ("--train-per-class", "raise it to 2 or more"),
}


@dataclass(frozen=True)
class Protocol:
    """How rows are chosen beyond --test-size and --seed."""

    split: str | None = None  # "given", "random"; None: the given split where there is one
    train_per_class: int | None = None  # N training images per class
    test_per_class: int | None = None  # at most M test images per class (None: the others)
    repeats: int = 1  # draws the run averages: the given split alone is one draw


@dataclass(frozen=True)
class Ran:
    """Which protocol chose the rows, as the records name it."""

    kind: str = "random"  # random | given | per_class
    text: str = ""  # the report's line: what was split how
    source: str = ""  # given: where the split came from (folders, or the label file's name)
    # given with a val part: PredefinedSplit's test_fold over the training rows (-1: train,
    # 0: val), so the search validates on val alone.
    test_fold: np.ndarray | None = None

    @property
    def n_val(self) -> int:
        return 0 if self.test_fold is None else int((self.test_fold == 0).sum())


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
    ran: Ran = field(default_factory=Ran)


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
    ran: Ran = field(default_factory=Ran)


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
        ran=Ran("random", f"stratified, test size {test_size:g}, seed {seed}"),
    )


def _encoded(label_names: list[str], keep: np.ndarray, y: np.ndarray, train_rows: np.ndarray,
             test_rows: np.ndarray, dropped: list[str], ran: Ran) -> LabelSplit:
    """The split of rows chosen elsewhere, labels re-encoded over the classes kept."""
    encode = np.full(len(label_names), -1, dtype=np.int64)
    encode[keep] = np.arange(len(keep))
    return LabelSplit(train_rows=train_rows, test_rows=test_rows, y_train=encode[y[train_rows]],
                      y_test=encode[y[test_rows]], label_names=[label_names[c] for c in keep],
                      dropped=dropped, ran=ran)


def _given(data: Features | FeatureHeader, announce: Callable[[str], None]) -> LabelSplit:
    """The file's own split: search on train (val the one validation fold, if any), test
    on test. Classes with no training image cannot be learnt: their test images are left
    out, with a warning naming them."""
    assert data.split is not None
    split = np.asarray(data.split)
    source = split_source(data.attrs) or "the file"
    counts = {name: int((split == name).sum()) for name in ("train", "val", "test")}
    shown = ", ".join(f"{name} {n:,}" for name, n in counts.items() if n or name != "val")
    for missing in ("train", "test"):
        if not counts[missing]:
            raise ProtocolError(
                f"{data.path}: its given split ({source}) has no {missing} images ({shown}); "
                "pass --split random to split the images here")
    announce(f"using the given split ({source}): {shown}; --split random splits the images "
             "here instead")
    searched = np.flatnonzero(split != "test")
    present = np.bincount(data.y[searched], minlength=len(data.label_names))
    keep = np.flatnonzero(present > 0)
    test_rows = np.flatnonzero((split == "test") & np.isin(data.y, keep))
    untrained = np.flatnonzero(present == 0)
    dropped = [f"{data.label_names[c]} ({int(((split == 'test') & (data.y == c)).sum())})"
               for c in untrained]
    if dropped:
        announce(f"warning: leaving out the test images of {len(dropped)} class(es) with no "
                 f"training image in the given split: {', '.join(dropped)}")
    if len(keep) < 2:
        raise ProtocolError(f"{data.path}: the given split ({source}) trains on fewer than 2 "
                            "classes; pass --split random to split the images here")
    test_fold = np.where(split[searched] == "val", 0, -1) if counts["val"] else None
    ran = Ran("given", f"given split from {source}", source, test_fold)
    return _encoded(data.label_names, keep, data.y, searched, test_rows, dropped, ran)


def _per_class(data: Features | FeatureHeader, n_train: int, n_test: int | None, seed: int,
               given: bool, announce: Callable[[str], None]) -> LabelSplit:
    """`n_train` images of each class drawn for training, up to `n_test` of the others
    (all of them when None) for testing, with `seed`; from the given split's train and
    val for training and its test for testing when `given`. A class without enough
    images for both is left out with a warning."""
    y = data.y
    if given:
        assert data.split is not None
        test_part = np.asarray(data.split) == "test"
    else:
        test_part = np.zeros(len(y), dtype=bool)
    rng = np.random.default_rng(seed)
    train: list[np.ndarray] = []
    test: list[np.ndarray] = []
    keep: list[int] = []
    dropped: list[str] = []
    for c in range(len(data.label_names)):
        pool = np.flatnonzero((y == c) & ~test_part)
        drawn = rng.choice(pool, n_train, replace=False) if len(pool) >= n_train else pool
        others = np.setdiff1d(np.flatnonzero((y == c) & test_part) if given else pool, drawn)
        if len(pool) < n_train or not len(others):
            # Under a given split only train+val can be drawn from: count what each part has.
            had = (f"{len(pool)} in train+val, {int(((y == c) & test_part).sum())} in test"
                   if given else f"{len(pool)}")
            dropped.append(f"{data.label_names[c]} ({had})")
            continue
        keep.append(c)
        train.append(drawn)
        test.append(others if n_test is None or len(others) <= n_test
                    else rng.choice(others, n_test, replace=False))
    if dropped:
        announce(f"warning: dropping {len(dropped)} class(es) that cannot give {n_train} "
                 f"training images and a test image{' in the given split' if given else ''}: "
                 f"{', '.join(dropped)}")
    if len(keep) < 2:
        raise ProtocolError(f"--train-per-class {n_train}: fewer than 2 classes of {data.path} "
                            f"have {n_train} training images and a test image; lower it")
    up_to = "all the others" if n_test is None else f"up to {n_test} of the others"
    source = (split_source(data.attrs) or "the file") if given else ""
    ran = Ran("per_class", f"{n_train} training images per class, {up_to} for testing, "
                           f"seed {seed}" + (f"; from the given split ({source})" if given else ""),
              source)
    return _encoded(data.label_names, np.array(keep), y, np.sort(np.concatenate(train)),
                    np.sort(np.concatenate(test)), dropped, ran)


def needs_header(chosen: Protocol) -> bool:
    """Whether `check_options` can refuse these options, so a file's header is worth
    reading before the run."""
    return chosen.split == "given" or chosen.repeats > 1


def check_options(data: Features | FeatureHeader, chosen: Protocol) -> None:
    """Refuse options that the file's given split (or its lack of one) rules out."""
    if chosen.split == "given" and data.split is None:
        labels = data.attrs.get("labels_file")
        if labels:
            name = Path(str(labels)).name
            raise ProtocolUsageError(
                f"--split given: {data.path} has no given split (its label file {name} has no "
                f"split column); add one (train, val, test) to {name} and extract again, or "
                "drop --split given")
        raise ProtocolUsageError(
            f"--split given: {data.path} has no given split (its images came from class "
            "folders); extract split folders (train/, test/) or a label file with a split "
            "column, or drop --split given")
    given = data.split is not None and chosen.split != "random"
    if given and chosen.train_per_class is None and chosen.repeats > 1:
        raise ProtocolUsageError(
            f"--repeats {chosen.repeats}: {data.path} has a given split, which is one draw; "
            "pass --split random or --train-per-class N to average draws")


def choose_rows(data: Features | FeatureHeader, test_size: float, seed: int, chosen: Protocol,
                announce: Callable[[str], None]) -> LabelSplit:
    """The rows of each part under the protocol asked for; labels only, so a client can
    split rows that workers will read."""
    check_options(data, chosen)
    given = data.split is not None and chosen.split != "random"
    if chosen.train_per_class is not None:
        return _per_class(data, chosen.train_per_class, chosen.test_per_class, seed, given,
                          announce)
    if given:
        return _given(data, announce)
    return split_labels(data.y, data.label_names, test_size, seed, announce, data.path)


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
    chosen: Protocol | None = None,
) -> Split:
    """Drop classes too small to evaluate, split (`chosen`: the given split where there
    is one, by default), and copy each part out once.

    The training part goes to a memory-mapped file in `scratch`; the full matrix is
    released afterwards (features.X becomes empty), so no row is held twice.
    """
    labels = choose_rows(features, test_size, seed, chosen or Protocol(), announce)
    split = Split(
        X_train=_rows_to_memmap(features.X, labels.train_rows, scratch / "X_train.npy"),
        y_train=labels.y_train,
        X_test=features.X[labels.test_rows],
        y_test=labels.y_test,
        train_rows=labels.train_rows,
        test_rows=labels.test_rows,
        label_names=labels.label_names,
        dropped=labels.dropped,
        ran=labels.ran,
    )
    features.X = np.empty((0, features.X.shape[1]), dtype=features.X.dtype)
    return split


def fold_count(split: Split | LabelSplit, cv: int, announce: Callable[[str], None]) -> int:
    """`cv`, reduced when the smallest class has fewer training images than folds."""
    counts = np.bincount(split.y_train, minlength=len(split.label_names))
    smallest = int(counts.min())
    name = split.label_names[int(counts.argmin())]
    if smallest < 2:
        option, way_out = TOO_FEW_TRAINING[split.ran.kind]
        raise ProtocolError(
            f"{option}: class '{name}' keeps {smallest} training image(s) after the split; "
            f"{way_out}"
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


def search_folds(split: Split | LabelSplit, cv: int, seed: int,
                 announce: Callable[[str], None]) -> tuple[int, Any]:
    """The search's folds and how many: the given val part as the one validation fold
    (PredefinedSplit), else `folds` over the training part."""
    if split.ran.test_fold is not None:
        from sklearn.model_selection import PredefinedSplit

        return 1, PredefinedSplit(split.ran.test_fold)
    n_splits = fold_count(split, cv, announce)
    return n_splits, folds(n_splits, seed)
