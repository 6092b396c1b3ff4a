"""Feature fusion: several feature files of the same images read as one.

Each image's row is the concatenation of its rows in every file, in the order the files
were named, so that `predict` can rebuild the same vector from the extractors the model
bundle lists. Files are matched by label names and image paths; rows stored in another
order are aligned by path. Anything that cannot be aligned (other classes, other
folders, other images, another version of the images, a path twice) is refused in one
line naming the first difference, as a FeatureFileError like any other unusable feature
file.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from extract.featurefile import Extractor, FeatureFileError, Features, read_features

WAY_OUT = "fuse files extracted from the same images"


class FusionError(FeatureFileError):
    """Feature files, or extractors, that cannot be fused; the message names the first
    difference."""


def read_fused(paths: Sequence[Path]) -> Features:
    """One file as read_features reads it; several aligned on the first and concatenated.

    A fused result's attrs join the files' extractor settings with "+", sum their
    feature_dim, and list every file's own attrs, in order, under "extractors".
    """
    if not paths:
        raise ValueError("read_fused needs at least one feature file")
    if len(paths) == 1:
        return read_features(paths[0])
    seen: dict[Path, Path] = {}
    for path in paths:
        resolved = Path(path).resolve()
        if resolved in seen:
            raise FusionError(f"{path}: named twice among the fused feature files")
        seen[resolved] = path
    first = read_features(paths[0])
    parts = [first]
    for path in paths[1:]:
        parts.append(_aligned(first, read_features(path)))
    attrs = {
        **first.attrs,
        **Extractor.joined([Extractor.from_attrs(part.attrs) for part in parts]),
        "feature_dim": sum(part.X.shape[1] for part in parts),
        "extractors": [part.attrs for part in parts],
        "files": [str(part.path) for part in parts],
    }
    X = np.concatenate([part.X for part in parts], axis=1)
    return replace(first, X=X, attrs=attrs)


def extractors(attrs: dict[str, Any]) -> list[dict[str, Any]]:
    """The attrs of every file behind a (possibly fused) read, in the order of its columns."""
    return list(attrs.get("extractors", [attrs]))


def _aligned(first: Features, other: Features) -> Features:
    """`other` with its rows in `first`'s order, after checking both hold the same images."""
    a, b = first.path, other.path
    ra, rb = first.attrs.get("dataset_root"), other.attrs.get("dataset_root")
    folders = (f"images from different folders ({rb} vs {ra})"
               if ra and rb and ra != rb else "")
    if other.label_names != first.label_names:
        also = f", {folders}" if folders else ""
        raise FusionError(f"{b}: {_class_difference(first, other)}{also}; {WAY_OUT}")
    fa, fb = first.attrs.get("dataset_fingerprint"), other.attrs.get("dataset_fingerprint")
    if fa and fb and fa != fb:
        if folders:  # extracting again would not help: the folders hold other images
            raise FusionError(f"{b}: {folders}; {WAY_OUT}")
        raise FusionError(f"{b}: extracted from another version of the images than {a} "
                               "(dataset fingerprints differ); extract both from the images "
                               "as they are now")
    row_of, first_rows = _rows_by_path(other), _rows_by_path(first)
    missing = next((p for p in first.paths if p not in row_of), None)
    if missing is not None:
        raise FusionError(f"{b}: no row for {missing}, which {a} has; {WAY_OUT}")
    if len(other.paths) != len(first.paths):
        extra = next(p for p in other.paths if p not in first_rows)
        raise FusionError(f"{b}: has {extra}, which {a} lacks; {WAY_OUT}")
    order = np.fromiter((row_of[p] for p in first.paths), dtype=np.int64, count=len(first.paths))
    y = other.y[order]
    if not np.array_equal(y, first.y):
        i = int(np.flatnonzero(y != first.y)[0])
        raise FusionError(f"{b}: {first.paths[i]} is labelled {first.label_names[y[i]]!r}, "
                               f"in {a} {first.label_names[first.y[i]]!r}; {WAY_OUT}")
    split = None if other.split is None else [other.split[i] for i in order]
    _check_split(first, other, split)
    return replace(other, X=other.X[order], y=y, paths=first.paths, split=split)


def _check_split(first: Features, other: Features, split: list[str] | None) -> None:
    """Refuse files whose given splits disagree (`split`: other's, in first's row order):
    one with a split and one without, or an image in another part."""
    a, b = first.path, other.path
    if (first.split is None) != (split is None):
        differs = (f"has no given split, while {a} has one" if split is None
                   else f"has a given split, while {a} has none")
        raise FusionError(f"{b}: {differs}; extract both from the same layout (split "
                          "folders, or the same label file)")
    if first.split is None or split is None or first.split == split:
        return
    i = next(i for i, (x, y) in enumerate(zip(first.split, split)) if x != y)
    raise FusionError(f"{b}: {first.paths[i]} is in the {split[i]} split, in {a} the "
                      f"{first.split[i]} split; {WAY_OUT} and the same split")


def _class_difference(first: Features, other: Features) -> str:
    """How `other`'s classes differ from `first`'s: how many, and which are in one only;
    for as many classes, the first that differs."""
    mine, theirs = first.label_names, other.label_names
    if len(mine) == len(theirs):
        i = next(i for i, (x, y) in enumerate(zip(mine, theirs)) if x != y)
        return f"class {i + 1} is {theirs[i]!r} where {first.path} has {mine[i]!r}"
    only_here = [name for name in theirs if name not in mine]
    only_there = [name for name in mine if name not in theirs]
    which = ([f"only here: {_some(only_here)}"] if only_here else []) + (
        [f"missing here: {_some(only_there)}"] if only_there else [])
    return (f"different classes ({len(theirs)} vs {len(mine)} in {first.path}"
            + "".join(f"; {part}" for part in which) + ")")


def _some(names: Sequence[str], shown: int = 3) -> str:
    """The first few names, and how many more there are."""
    listed = ", ".join(repr(name) for name in names[:shown])
    return listed + (f" and {len(names) - shown} more" if len(names) > shown else "")


def _rows_by_path(features: Features) -> dict[str, int]:
    """Row index of every image path; a path twice makes the rows impossible to align."""
    rows: dict[str, int] = {}
    for i, path in enumerate(features.paths):
        if path in rows:
            raise FusionError(f"{features.path}: {path} has two rows, so its rows cannot be "
                                   "aligned with another file's; extract it again")
        rows[path] = i
    return rows


def joined_rows(
    streams: Iterable[Iterator[tuple[int, np.ndarray | None]]],
) -> Iterator[tuple[int, np.ndarray | None]]:
    """(index, features) per image from several extractors over the same images, joined
    column-wise in the order given (as read_fused joins their files); an image that one
    extractor cannot read is unreadable for the fused model (None)."""
    for rows in zip(*streams, strict=True):
        index = rows[0][0]
        parts = [row for _, row in rows]
        yield index, None if any(row is None for row in parts) else np.concatenate(parts)