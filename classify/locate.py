"""Which feature file a `classify` run reads: named, found by dataset and settings, or newest.

It never picks one of several matching files silently: it lists them and asks the user
to narrow down (extract.cache finds and describes the files).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from common.errors import UserError
from common.text import did_you_mean
from extract import cache


class LocateError(UserError, ValueError):
    """No single feature file matches what the user named."""


class UnknownNameError(LocateError):
    """A backbone, pooling or dataset that no feature file has: a typo in `option`."""

    def __init__(self, message: str, option: str) -> None:
        super().__init__(message)
        self.option = option


def check_names(folder: Path, backbones: Sequence[str], poolings: Sequence[str],
                dataset: str | None = None) -> None:
    """Refuse a --backbone, --pooling or --dataset that no feature file in `folder` has,
    before any file is read: a typo (with the closest names the files have), or settings
    that were never extracted."""
    found = cache.entries(folder) if folder.is_dir() else []
    for key, asked in (("backbone", backbones), ("pooling", poolings)):
        have = sorted({str(entry.attrs.get(key)) for entry in found})
        for name in asked:
            if name not in have:
                # The hint names no value: the one asked for may be the typo.
                raise UnknownNameError(
                    f"no feature file in {folder} has {key} {name!r}; "
                    f"{did_you_mean(name, have)}{_have(have)} (extract --list shows them; "
                    f"extract --{key} NAME makes one)", f"--{key}")
    if dataset is not None and not any(cache.matches(e, dataset=dataset) for e in found):
        have = sorted({name for e in found if (name := _dataset_name(e))})
        raise UnknownNameError(
            f"no feature file in {folder} has dataset {dataset!r}; "
            f"{did_you_mean(dataset, have)}{_have(have)} (extract --list shows them; "
            "extract --dataset FOLDER makes one)", "--dataset")


def _have(names: Sequence[str]) -> str:
    return f"the files have {', '.join(names)}" if names else "there is none yet"


def _dataset_name(entry: cache.Entry) -> str:
    """The dataset name a file answers to: recorded, its folder's name, or (a file of an
    older version) the start of its name, before -<backbone>-."""
    recorded = entry.attrs.get("dataset") or Path(str(entry.attrs.get("dataset_root") or "")).name
    if recorded:
        return str(recorded)
    name, backbone = entry.path.name, f"-{entry.attrs.get('backbone')}-"
    return name[:name.index(backbone)] if backbone in name else ""


def by_dataset(folder: Path, dataset: str, backbone: str, pooling: str | None = None,
               input_size: int | None = None, *, several_backbones: bool = False) -> Path:
    """The one complete file in `folder` of `dataset` with these settings.

    `several_backbones`: the file is one of several fused by backbone, where one
    --image-size applies to every backbone unless given once per backbone.
    """
    every = cache.entries(folder)
    found = [e for e in every
             if cache.matches(e, dataset=dataset, backbone=backbone, pooling=pooling,
                              input_size=input_size)]
    asked = " ".join(f"{flag} {value}" for flag, value in (
        ("--dataset", dataset), ("--backbone", backbone), ("--pooling", pooling),
        ("--image-size", input_size)) if value is not None)
    per_backbone = ("--image-size (one per --backbone, in order)" if several_backbones
                    else "--image-size")
    if not found:
        others = [e for e in every if cache.matches(e, dataset=dataset, backbone=backbone)]
        if not others:
            known = any(cache.matches(e, dataset=dataset) for e in every)
            guess = "" if known else did_you_mean(
                dataset, sorted({name for e in every if (name := _dataset_name(e))}))
            raise LocateError(f"{folder}: no complete feature file for {asked}; {guess}run "
                              "extract first (extract --list shows what there is)")
        raise LocateError(f"{folder}: no complete feature file for {asked}; "
                          f"{_listing(others, f'the {backbone} files have other settings')}\n"
                          f"choose one with --pooling or {per_backbone}, or run extract "
                          "with these settings")
    if len(found) > 1:
        if len({(e.attrs.get("pooling"), e.attrs.get("input_size")) for e in found}) > 1:
            advice = f"narrow down with --pooling or {per_backbone}, or name one with --features"
        else:  # they differ in what only the listing shows: the labels, the folder, the name
            advice = ("--pooling and --image-size cannot tell them apart; name one with "
                      f"--features FILE, e.g. --features {found[0].path}")
        raise LocateError(f"{len(found)} feature files match {asked}:\n"
                          f"{_listing(found)}\n{advice}")
    return found[0].path


def _listing(found: list[cache.Entry], heading: str = "") -> str:
    """A line a file: its name, settings, rows and date; the images' folder where the
    files' folders differ; where its labels and given split came from."""
    roots = {e.attrs.get("dataset_root") for e in found}
    lines = [f"  {e.path.name}: {e.settings()}, {e.rows} rows, {e.when()}"
             + (f"; images in {e.attrs.get('dataset_root', '?')}" if len(roots) > 1 else "")
             + cache.split_note(e.attrs) for e in found]
    return "\n".join([heading + ":"] * bool(heading) + lines)


def newest(folder: Path) -> Path:
    """The most recently extracted or reused complete feature file in `folder`."""
    if not folder.is_dir():
        raise LocateError(f"{folder}: no feature folder; run extract first or pass --features")
    found = cache.entries(folder)
    if not found:
        raise LocateError(f"{folder}: no complete feature file; run extract first")
    return found[0].path
