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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import text
from extract import featurefile
from extract.featurefile import Extractor, Role


def identity_keys() -> tuple[str, ...]:
    """The attributes that make up a file's identity, in the order a difference is named."""
    return ("dataset_root", *Extractor.names(Role.IDENTITY))


def identity(dataset_root: str | None, extractor: Extractor) -> dict[str, Any]:
    """Everything that decides the rows: the images' folder and the extractor's settings."""
    return {"dataset_root": dataset_root, **extractor.view(Role.IDENTITY)}


def digest(identity: dict[str, Any]) -> str:
    """A stable hex digest of an identity (its keys in any order)."""
    # A setting that does not apply (None) is left out, so files made before it existed
    # keep their names.
    text = json.dumps({key: identity[key] for key in identity_keys()
                       if identity.get(key) is not None}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def file_name(dataset: str, backbone: str, pooling: str, identity: dict[str, Any]) -> str:
    """<dataset>-<backbone>-<pooling>-<digest8>.h5, the name extract writes."""
    stem = Path(dataset.rstrip("/")).name or "dataset"
    return f"{stem}-{backbone}-{pooling}-{digest(identity)[:8]}.h5"


def identity_of(attrs: dict[str, Any]) -> dict[str, Any]:
    """The identity a file's attributes record (older files: engine defaults)."""
    return identity(attrs.get("dataset_root"), Extractor.from_attrs(attrs).with_legacy_defaults())


def differences(have: dict[str, Any], want: dict[str, Any]) -> list[str]:
    """`key here vs there` for each identity setting that differs."""
    return [f"{key} {have.get(key)} vs {want.get(key)}" for key in identity_keys()
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


def matches(entry: Entry, *, dataset: str | None = None, backbone: str | None = None,
            pooling: str | None = None, input_size: int | None = None) -> bool:
    """Whether `entry` is a file of `dataset` (its name or folder) with these settings."""
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
        lines.append(f"    {entry.settings()}; images in {entry.attrs.get('dataset_root', '?')}")
    return "\n".join(lines)