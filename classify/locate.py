"""Which feature file a `classify` run reads: named, derived from dataset/backbone, or newest."""

from __future__ import annotations

from pathlib import Path

from extract.store import FeatureFileError, feature_file_name, resolve_newest


class LocateError(ValueError):
    """No single feature file matches what the user named."""


def by_dataset(folder: Path, dataset: str, backbone: str, pooling: str | None) -> Path:
    """The file for (dataset, backbone[, pooling]); without pooling the one match in `folder`."""
    if pooling is not None:
        return folder / feature_file_name(dataset, backbone, pooling)
    pattern = feature_file_name(dataset, backbone, "*")
    candidates = sorted(folder.glob(pattern))
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise LocateError(f"{folder}: no feature file matches {pattern}; run extract first")
    names = ", ".join(c.name for c in candidates)
    raise LocateError(f"{folder}: several files match {pattern} ({names}); choose with --pooling")


def newest(folder: Path) -> Path:
    """The most recent complete feature file in `folder`."""
    if not folder.is_dir():
        raise LocateError(f"{folder}: no feature folder; run extract first or pass --features")
    try:
        return resolve_newest(folder)
    except FeatureFileError as exc:
        raise LocateError(str(exc)) from None
