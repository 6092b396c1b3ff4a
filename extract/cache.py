"""The feature cache: what names a file, and finding files in outputs/features/.

Everything that decides the rows is a file's identity; its name carries a short digest
of that identity, so files for other folders or settings live side by side and never
replace each other. Only h5py and numpy are imported (through `featurefile`): `classify`
finds files with this module on a machine without TensorFlow.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import text
from extract import featurefile, parts
from extract.featurefile import Extractor, Role

# A label file's sha256 and the columns read from it (extract.scan.LabelFile): in an
# identity only where a label file gave the labels, so the files of image folders keep
# the identity, and the name, they have always had.
LABEL_KEYS = ("labels_sha256", "labels_columns")


def identity_keys() -> tuple[str, ...]:
    """The attributes that make up every file's identity, in the order a difference is
    named (a label file's joins them where one gave the labels: `LABEL_KEYS`)."""
    return ("dataset_root", *Extractor.names(Role.IDENTITY))


def _every_key() -> tuple[str, ...]:
    keys = identity_keys()
    return (keys[0], *LABEL_KEYS, *keys[1:])


def identity(dataset_root: str | None, extractor: Extractor,
             labels: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Everything that decides the rows: the images' folder, the label file (`LABEL_KEYS`,
    where one gave the labels) and the extractor's settings."""
    return {"dataset_root": dataset_root,
            **{key: labels[key] for key in LABEL_KEYS if labels and labels.get(key)},
            **extractor.view(Role.IDENTITY)}


def digest(identity: dict[str, Any]) -> str:
    """A stable hex digest of an identity (its keys in any order)."""
    # A setting that does not apply (None) is left out, so files made before it existed
    # keep their names.
    text = json.dumps({key: identity[key] for key in _every_key()
                       if identity.get(key) is not None}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def file_name(dataset: str, backbone: str, pooling: str, identity: dict[str, Any]) -> str:
    """<dataset>-<backbone>-<pooling>-<digest8>.h5, the name extract writes."""
    stem = Path(dataset.rstrip("/")).name or "dataset"
    return f"{stem}-{backbone}-{pooling}-{digest(identity)[:8]}.h5"


def identity_of(attrs: dict[str, Any]) -> dict[str, Any]:
    """The identity a file's attributes record (older files: engine defaults)."""
    return identity(attrs.get("dataset_root"), Extractor.from_attrs(attrs).with_legacy_defaults(),
                    attrs)


def differences(have: dict[str, Any], want: dict[str, Any], *, labels: bool = True
                ) -> list[str]:
    """`key here vs there` for each identity setting that differs; without `labels`, the
    label file's keys are left out, and what remains decides the rows' values."""
    return [f"{key} {have.get(key)} vs {want.get(key)}"
            for key in (_every_key() if labels else identity_keys())
            if have.get(key) != want.get(key)]


@dataclass(frozen=True)
class Entry:
    """One complete feature file in the cache, as the listing shows it."""

    path: Path
    attrs: dict[str, Any]
    size: int
    used: float  # when it was last extracted or reused (its mtime)

    @property
    def rows(self) -> int:
        return int(self.attrs.get("n_written", 0))

    def settings(self) -> str:
        e = Extractor.from_attrs(self.attrs).with_legacy_defaults()
        extra = "" if e.engine == "tensorflow" else f" {e.engine}"
        extra += "" if e.precision == "float32" else f" {e.precision}"
        if e.model_file is not None:  # the file, its output and scaling, a short sha256
            return (f"{e.model_file} output {e.model_output} {e.pooling} {e.input_size}px "
                    f"{e.preprocessing} {str(e.weights)[:19]} {e.dtype or 'float32'}{extra}")
        return (f"{e.backbone} {e.pooling} {e.input_size}px {e.weights} "
                f"{e.dtype or 'float32'}{extra}")

    def when(self) -> str:
        return _dt.datetime.fromtimestamp(self.used).strftime("%Y-%m-%d %H:%M")


def entries(folder: Path) -> list[Entry]:
    """Every complete feature file in `folder`, most recently used first.

    A file that cannot be read is left out here; `read_features` names its fault.
    """
    found = []
    for path in folder.glob("*.h5") if folder.is_dir() else []:
        try:
            attrs = featurefile.read_attrs(path)
            st = path.stat()
        except (featurefile.FeatureFileError, OSError):
            continue
        if attrs.get("complete") is True:
            found.append(Entry(path, attrs, st.st_size, st.st_mtime))
    return sorted(found, key=lambda e: e.used, reverse=True)


def matches(entry: Entry | Unfinished, *, dataset: str | None = None,
            backbone: str | None = None, pooling: str | None = None,
            input_size: int | None = None) -> bool:
    """Whether `entry` is a file (or an unfinished one) of `dataset` (its name or folder)
    with these settings."""
    a = entry.attrs
    if dataset is not None:
        root = str(a.get("dataset_root", ""))
        names = {str(a.get("dataset", "")), Path(root).name, root}
        wanted = {dataset.rstrip("/"), str(Path(dataset).expanduser().resolve())}
        # A file written before the cache recorded its dataset: <dataset>-<backbone>-...
        legacy = "dataset" not in a and entry.path.name.startswith(f"{dataset.rstrip('/')}-")
        if not (names & wanted or legacy):
            return False
    return ((backbone is None or a.get("backbone") == backbone)
            and (pooling is None or a.get("pooling") == pooling)
            and (input_size is None or a.get("input_size") == input_size))


@dataclass(frozen=True)
class Unfinished:
    """The parts folder of an extraction that was interrupted (or is running now)."""

    path: Path  # the <name>.parts folder
    shards: int  # finished parts
    rows: int  # in the finished parts
    size: int
    used: float  # its last change
    record: dict[str, Any]  # parts.read_run: dataset, identity, command ({}: not kept)

    @property
    def attrs(self) -> dict[str, Any]:
        """The file's attributes as far as the record knows them (for `matches`)."""
        return {**(self.record.get("identity") or {}),
                **({"dataset": self.record["dataset"]} if "dataset" in self.record else {})}

    def when(self) -> str:
        return _dt.datetime.fromtimestamp(self.used).strftime("%Y-%m-%d %H:%M")


def unfinished(folder: Path) -> list[Unfinished]:
    """The parts folders in `folder`, most recently changed first: each an extraction
    that its command, run again, resumes."""
    found = []
    for where in folder.glob("*.parts") if folder.is_dir() else []:
        try:
            done = sorted(where.glob("*.h5"))
            size = sum(p.stat().st_size for p in where.iterdir() if p.is_file())
            found.append(Unfinished(where, len(done), sum(parts.rows_in(p) for p in done),
                                    size, where.stat().st_mtime, parts.read_run(where)))
        except OSError:  # finished and removed while we looked
            continue
    return sorted(found, key=lambda u: u.used, reverse=True)


def unfinished_table(found: list[Unfinished]) -> str:
    """The `extract --list` section on unfinished extractions: a line each, and under it
    the command that resumes it."""
    head = (f"unfinished extractions (interrupted, or running now): {len(found)}; the "
            "command under each resumes it, deleting its folder drops it")
    rows = text.table([(f"{u.path.name}/", f"{u.shards} shard{'s' if u.shards != 1 else ''}",
                        f"{u.rows} rows", f"{u.size / 1e6:.1f} MB", f"changed {u.when()}")
                       for u in found], right={1, 2, 3})
    lines = [head]
    for entry, row in zip(found, rows):
        command = entry.record.get("command") or (
            "(its command was not kept: run the extract command that started it again)")
        lines += [f"    {row}", f"        {command}"]
    return "\n".join(lines)


def mark_used(path: Path) -> str | None:
    """Record that `path` was just used, so 'newest' finds it; a note if that failed."""
    try:
        os.utime(path)
    except OSError as exc:
        return f"note: {path}: cannot update its time ({exc.strerror}); 'newest' may not pick it"
    return None


def table(found: list[Entry]) -> str:
    """The cache listing, two lines a file so that it fits 100 columns: its name, rows,
    size and when it was last used; then, indented, its settings and its images' folder."""
    if not found:
        return "no complete feature files"
    heads = text.table([(e.path.name, f"{e.rows} rows", f"{e.size / 1e6:.1f} MB", f"used {e.when()}")
                   for e in found], right={1, 2})
    lines = []
    for entry, head in zip(found, heads):
        lines.append(head)
        lines.append(f"    {entry.settings()}; images in {entry.attrs.get('dataset_root', '?')}"
                     + split_note(entry.attrs))
    return "\n".join(lines)


def split_note(attrs: dict[str, Any]) -> str:
    """Where a file's labels and given split came from, as the listing's line ends."""
    labels, split = attrs.get("labels_file"), featurefile.split_source(attrs)
    named = Path(labels).name if labels else ""
    if named and split == named:
        return f", labels and given split from {named}"
    return (f", labels from {named}" if named else "") + (
        f", given split from {split}" if split else "")


# A conversion's staging folder older than this was left by a killed run (a conversion
# takes seconds to minutes); a younger one may belong to a conversion under way.
STALE_STAGING_S = 3600


def converted_models_folder() -> Path:
    """Where models converted for OpenVINO are kept: $XDG_CACHE_HOME/offtheshelf/openvino,
    else ~/.cache/offtheshelf/openvino."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "offtheshelf" / "openvino"


@dataclass(frozen=True)
class ConvertedModel:
    """One converted model (a folder named <backbone>-<pooling>-<size>-<digest>)."""

    path: Path
    size: int
    used: float  # when it was converted or last read (the folder's mtime)

    def when(self) -> str:
        return _dt.datetime.fromtimestamp(self.used).strftime("%Y-%m-%d %H:%M")


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def converted_models(folder: Path | None = None) -> list[ConvertedModel]:
    """The converted models in `folder` (the default one), most recently used first."""
    folder = folder or converted_models_folder()
    found = []
    for path in folder.iterdir() if folder.is_dir() else []:
        if path.is_dir() and not path.name.startswith("."):  # "."-names are staging
            try:
                found.append(ConvertedModel(path, _folder_size(path), path.stat().st_mtime))
            except OSError:  # removed while we looked
                continue
    return sorted(found, key=lambda m: m.used, reverse=True)


def converted_table(found: list[ConvertedModel], folder: Path | None = None) -> str:
    """The `extract --list` section on converted models: one line each, and the total."""
    folder = folder or converted_models_folder()
    total = sum(m.size for m in found)
    head = (f"models converted for OpenVINO in {folder}/: {len(found)}, {total / 1e6:.1f} MB"
            + ("; extract --prune-cache removes them" if found else ""))
    rows = text.table([(m.path.name, f"{m.size / 1e6:.1f} MB", f"used {m.when()}")
                       for m in found], right={1})
    return "\n".join([head, *(f"    {row}" for row in rows)])


def prune_converted(folder: Path | None = None) -> tuple[int, int]:
    """Remove every converted model (each is converted again when next needed) and the
    staging folders killed conversions left; (models removed, bytes freed)."""
    folder = folder or converted_models_folder()
    removed, freed = 0, 0
    for model in converted_models(folder):
        freed += model.size
        removed += 1
        shutil.rmtree(model.path, ignore_errors=True)
    for staging in folder.glob(".*") if folder.is_dir() else []:
        if staging.is_dir() and time.time() - staging.stat().st_mtime > STALE_STAGING_S:
            freed += _folder_size(staging)
            shutil.rmtree(staging, ignore_errors=True)
    return removed, freed
