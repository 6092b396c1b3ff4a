"""Synthetic feature files written with the real FeatureFileWriter (no extraction needed)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from extract.consolidate import FeatureFileWriter

ATTRS = {
    "backbone": "vgg16",
    "weights": "imagenet",
    "pooling": "avg",
    "input_size": 224,
    "preprocessing": "caffe",
    "dataset_fingerprint": "fingerprint-of-toy",
}


def write_feature_file(
    path: Path,
    *,
    counts: Sequence[int] = (30, 30, 30, 30),
    dims: int = 16,
    seed: int = 0,
    complete: bool = True,
    row_ids: bool = False,
    attrs: dict[str, Any] | None = None,
    spread: float = 5.0,
) -> Path:
    """Separable classes (well-spread centres + unit noise; a small `spread` makes them
    overlap); `row_ids` puts the row number in column 0 so a test can tell which rows an
    estimator saw."""
    names = [f"class_{i:02d}" for i in range(len(counts))]
    y = np.repeat(np.arange(len(counts)), counts)
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=spread, size=(len(counts), dims))
    X = (centres[y] + rng.normal(size=(len(y), dims))).astype(np.float32)
    if row_ids:
        X[:, 0] = np.arange(len(y))
    paths = [f"{names[label]}/{i:04d}.jpg" for i, label in enumerate(y)]
    writer = FeatureFileWriter(
        path, feature_dim=dims, label_names=names, attrs={**ATTRS, **(attrs or {})}, buffer_size=50
    )
    for row, label, image in zip(X, y, paths):
        writer.add(row, int(label), image)
    writer.finish()
    if not complete:  # what an older offtheshelf left after an interruption
        set_attr(path, "complete", False)
    return path


def set_attr(path: Path, name: str, value: Any) -> None:
    with h5py.File(path, "r+") as f:
        f.attrs[name] = value


def delete_dataset(path: Path, name: str) -> None:
    with h5py.File(path, "r+") as f:
        del f[name]


def as_float64(path: Path, change: Callable[[np.ndarray], None] | None = None) -> Path:
    """The file's features rewritten as float64 (as numpy writes them), after `change`."""
    with h5py.File(path, "r+") as f:
        X = f["features"][...].astype(np.float64)
        if change is not None:
            change(X)
        del f["features"]
        f.create_dataset("features", data=X, chunks=(8, X.shape[1]))
    return path
