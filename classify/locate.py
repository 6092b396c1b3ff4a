"""Which feature file a `classify` run reads: named, found by dataset and settings, or newest.

It never picks one of several matching files silently: it lists them and asks the user
to narrow down (extract.cache finds and describes the files).
"""

from __future__ import annotations

from pathlib import Path

from common.errors import UserError
from extract import cache


class LocateError(UserError, ValueError):
    """No single feature file matches what the user named."""


def by_dataset(folder: Path, dataset: str, backbone: str, pooling: str | None = None,
               input_size: int | None = None) -> Path:
    """The one complete file in `folder` of `dataset` with these settings."""
    found = [e for e in cache.entries(folder)
             if cache.matches(e, dataset=dataset, backbone=backbone, pooling=pooling,
                              input_size=input_size)]
    asked = " ".join(f"{flag} {value}" for flag, value in (
        ("--dataset", dataset), ("--backbone", backbone), ("--pooling", pooling),
        ("--image-size", input_size)) if value is not None)
    if not found:
        raise LocateError(f"{folder}: no complete feature file for {asked}; run extract "
                          "first (extract --list shows what there is)")
    if len(found) > 1:
        listing = "\n".join(f"  {e.path.name}: {e.settings()}, {e.rows} rows, {e.when()}"
                            for e in found)
        raise LocateError(f"{len(found)} feature files match {asked}:\n{listing}\n"
                          "narrow down with --pooling or --image-size, or name one "
                          "with --features")
    return found[0].path


def newest(folder: Path) -> Path:
    """The most recently extracted or reused complete feature file in `folder`."""
    if not folder.is_dir():
        raise LocateError(f"{folder}: no feature folder; run extract first or pass --features")
    found = cache.entries(folder)
    if not found:
        raise LocateError(f"{folder}: no complete feature file; run extract first")
    return found[0].path
