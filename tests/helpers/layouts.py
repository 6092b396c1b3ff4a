"""Real flowers17 photos laid out as users' data comes (class folders, split folders, a
flat folder with a label file), as links to the shared files; and feature files that
carry a given split."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import pytest

from extract.datasets import FLOWERS17_CLASSES, FLOWERS17_PER_CLASS
from tests.helpers.featurefiles import write_feature_file
from tests.helpers.imagefolders import FLOWERS17_JPG


def flowers(classes: int, per_class: int) -> dict[str, list[Path]]:
    """The first `per_class` photos of each of the first `classes` flowers17 classes
    (the test is skipped where the shared photos are absent)."""
    if not FLOWERS17_JPG.is_dir():
        pytest.skip(f"real flowers17 photos not available at {FLOWERS17_JPG}")
    return {name: [FLOWERS17_JPG / f"image_{c * FLOWERS17_PER_CLASS + i + 1:04d}.jpg"
                   for i in range(per_class)]
            for c, name in enumerate(FLOWERS17_CLASSES[:classes])}


def link(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(source)


def class_folders(root: Path, photos: dict[str, list[Path]]) -> Path:
    """root/<class>/<photo>."""
    for name, files in photos.items():
        for file in files:
            link(file, root / name / file.name)
    return root


def split_folders(root: Path, photos: dict[str, list[Path]], parts: dict[str, int]) -> Path:
    """root/<split>/<class>/<photo>: each class's photos dealt to the splits in order,
    `parts` saying how many go to each (split folder name -> count)."""
    for name, files in photos.items():
        start = 0
        for split, count in parts.items():
            for file in files[start:start + count]:
                link(file, root / split / name / file.name)
            start += count
    return root


def flat_with_labels(root: Path, photos: dict[str, list[Path]], label_file: Path,
                     header: Sequence[str] = ("path", "label"), delimiter: str = ",",
                     splits: Sequence[str] | None = None) -> Path:
    """root/<photo> for every photo, and a label file naming each with its class (and,
    given `splits`, the split of each photo in turn)."""
    rows = []
    for name, files in photos.items():
        for i, file in enumerate(files):
            link(file, root / file.name)
            rows.append([file.name, name] + ([splits[i % len(splits)]] if splits else []))
    write_rows(label_file, [list(header), *rows], delimiter)
    return root


def write_rows(path: Path, rows: Sequence[Sequence[str]], delimiter: str = ",") -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, delimiter=delimiter).writerows(rows)
    return path


def write_split_file(path: Path, split: Sequence[str], counts: Sequence[int],
                     source: str = "folders", **options: object) -> Path:
    """A synthetic feature file (tests.helpers.featurefiles) whose rows carry `split`
    (one value per row, in the file's row order: classes in turn) and its source."""
    write_feature_file(path, counts=counts, **options)  # type: ignore[arg-type]
    with h5py.File(path, "r+") as f:
        f.create_dataset("split", data=np.array(list(split), dtype=object),
                         dtype=h5py.string_dtype())
        f.attrs["split_source"] = source
    return path
