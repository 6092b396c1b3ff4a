"""The HDF5 feature file (format version 1): the one contract between the two stages.

Only h5py and numpy are imported here, so `classify` can read features on a machine
without TensorFlow. `extract` writes every file aside and renames it into place when
complete (extract.consolidate), so a file under its final name is whole; the reader
still refuses partial and virtual files that older versions wrote.
"""

from __future__ import annotations

import enum
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from common.errors import UserError

FORMAT_VERSION = 1
REQUIRED_DATASETS = ("features", "labels", "label_names", "paths")
# The values of the optional per-row `split` dataset (where the data came with a split),
# and the root attribute saying where it came from: "folders" or the label file's path.
SPLITS = ("train", "val", "test")
SPLIT_SOURCE = "split_source"
_CHUNK_BYTES = 4 * 1024 * 1024


class FeatureFileError(UserError):
    """A feature file that cannot be used; the message names the file and the fault."""


@dataclass(kw_only=True)
class Rows:
    """What a checked feature file says of its rows besides their features: the part a
    header and a full read share."""

    path: Path
    y: np.ndarray
    label_names: list[str]
    paths: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    split: list[str] | None = None  # train, val or test per row; None: no split was given

    def rows(self) -> dict[str, Any]:
        """These fields by name, to build a `Features` from a `FeatureHeader`."""
        return {f.name: getattr(self, f.name) for f in fields(Rows)}


@dataclass(kw_only=True)
class Features(Rows):
    """Everything `classify` and `predict` need from a complete feature file."""

    X: np.ndarray


def plain(value: Any) -> Any:
    """h5py attributes come back as numpy scalars or bytes; make them plain Python."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


class Role(enum.Flag):
    """What an extractor setting is used for; each field of `Extractor` names its roles."""

    IDENTITY = enum.auto()  # decides the rows: part of the file's cache identity
    BUNDLE = enum.auto()  # a model bundle keeps it: predict rebuilds the extractor from it
    JOINED = enum.auto()  # names the extractor; fused files join their values with "+"
    RUNTIME = enum.auto()  # the mapper reports it: a part records it, the file copies it


def _setting(roles: Role) -> Any:
    return field(default=None, metadata={"roles": roles})


@dataclass(frozen=True)
class Extractor:
    """How a file's rows were computed, as its root attributes (or a model bundle's copy
    of them) record it: the one list of those attributes and of what each is for.

    A field is None where the record does not say: files written by hand may say little,
    and files written before engines existed name no engine or precision
    (`with_legacy_defaults`). The fields' order is the order differences are named in.
    """

    backbone: str | None = _setting(Role.IDENTITY | Role.BUNDLE | Role.JOINED)
    weights: str | None = _setting(Role.IDENTITY | Role.BUNDLE | Role.JOINED)  # or sha256:...
    preprocessing: str | None = _setting(Role.IDENTITY | Role.BUNDLE | Role.JOINED)
    pooling: str | None = _setting(Role.IDENTITY | Role.BUNDLE | Role.JOINED)
    input_size: int | None = _setting(Role.IDENTITY | Role.BUNDLE | Role.JOINED)
    feature_dim: int | None = _setting(Role.BUNDLE | Role.RUNTIME)
    dtype: str | None = _setting(Role.IDENTITY | Role.BUNDLE | Role.JOINED)  # the rows' storage
    engine: str | None = _setting(Role.IDENTITY | Role.BUNDLE | Role.RUNTIME)
    precision: str | None = _setting(Role.IDENTITY | Role.BUNDLE | Role.RUNTIME)  # the mapper's
    random_init: str | None = _setting(Role.IDENTITY | Role.BUNDLE)  # how random weights are drawn
    # A model file's (--backbone MODEL.onnx): the output its rows come from, and where
    # the file was read (its sha256 is `weights`; predict looks for it there).
    model_output: str | None = _setting(Role.IDENTITY | Role.BUNDLE)
    model_file: str | None = _setting(Role.BUNDLE | Role.RUNTIME)
    device: str | None = _setting(Role.RUNTIME)
    tensorflow_version: str | None = _setting(Role.RUNTIME)
    format_version: int | None = _setting(Role.BUNDLE)

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> Extractor:
        """The record of a file's root attributes (any other attributes are ignored)."""
        return cls(**{f.name: plain(attrs[f.name]) for f in fields(cls) if f.name in attrs})

    def to_attrs(self, role: Role | None = None) -> dict[str, Any]:
        """The attributes back, leaving out what the record does not say; with `role`,
        only the fields that have it."""
        return {name: value for name, value in self.view(role).items() if value is not None}

    @classmethod
    def names(cls, role: Role) -> tuple[str, ...]:
        """The fields that have `role`, in the record's order."""
        return tuple(f.name for f in fields(cls) if role in f.metadata["roles"])

    def view(self, role: Role | None = None) -> dict[str, Any]:
        """name -> value of the fields that have `role` (all without), None where unsaid."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if role is None or role in f.metadata["roles"]}

    def with_legacy_defaults(self) -> Extractor:
        """The record with what a file written before engines existed ran on: TensorFlow
        at float32."""
        return replace(self, engine="tensorflow" if self.engine is None else self.engine,
                       precision="float32" if self.precision is None else self.precision)

    @classmethod
    def joined(cls, records: Sequence[Extractor]) -> dict[str, str]:
        """The settings that name an extractor, each the records' values joined by "+"
        (backbone efficientnet_lite0+efficientnet_lite1): how fused files are named."""
        return {name: "+".join(str(getattr(record, name)) for record in records)
                for name in cls.names(Role.JOINED)}


def read_attrs(path: str | os.PathLike) -> dict[str, Any]:
    """Root attributes of a feature file as plain Python values."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            return {k: plain(v) for k, v in f.attrs.items()}
    except FileNotFoundError:
        raise FeatureFileError(f"{path}: no such feature file") from None
    except OSError as exc:
        raise FeatureFileError(
            f"{path}: not a readable HDF5 feature file ({one_line(exc)})"
        ) from None


def one_line(exc: BaseException) -> str:
    """An exception's text on one line (HDF5 messages can span several)."""
    return " ".join(str(exc).split()) or exc.__class__.__name__


def _integer(value: Any) -> int | None:
    """`value` as an int when it is a whole number stored as an integer, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        return None
    return int(value)


def _dataset(f: h5py.File, path: Path, name: str, ndim: int, kinds: str) -> h5py.Dataset:
    """The dataset `name`, checked to have `ndim` dimensions and a dtype of one of `kinds`
    (numpy kind letters; "T" for text)."""
    try:
        dataset = f.get(name)
    except (OSError, RuntimeError, KeyError) as exc:  # a broken link or object header
        raise FeatureFileError(f"{path}: dataset {name!r} unreadable ({one_line(exc)})") from None
    if not isinstance(dataset, h5py.Dataset):
        raise FeatureFileError(f"{path}: {name!r} is not a dataset")
    if dataset.ndim != ndim:
        raise FeatureFileError(
            f"{path}: {name!r} must be {ndim}-D, found shape {dataset.shape}"
        )
    dtype = dataset.dtype
    text = h5py.check_string_dtype(dtype) is not None
    if not (("T" in kinds and text) or (not text and dtype.kind in kinds)):
        raise FeatureFileError(f"{path}: {name!r} has the wrong type ({dtype})")
    return dataset


def _check_parts(dataset: h5py.Dataset, path: Path) -> None:
    """Refuse a virtual dataset over a missing or unfinished part file.

    HDF5 reads a source it cannot open as fill values without a word, so a lost part
    would otherwise come back as rows of zeros.
    """
    if not dataset.is_virtual:
        return
    for source in {s.file_name for s in dataset.virtual_sources()}:
        part = path.parent / source
        try:
            complete = read_attrs(part).get("complete") is True
        except FeatureFileError as exc:
            raise FeatureFileError(f"{path}: part file {exc}; rerun extract") from None
        if not complete:
            raise FeatureFileError(f"{path}: part file {part} is not complete; rerun extract")


def text(dataset: h5py.Dataset, stop: int | None = None) -> list[str]:
    values = dataset[()] if stop is None else dataset[:stop]
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


@dataclass(kw_only=True)
class FeatureHeader(Rows):
    """A checked feature file without its feature matrix: what a client needs to plan
    reading the rows elsewhere (`classify --cluster`) or all at once (`read_features`)."""

    n_rows: int
    feature_dim: int


def split_source(attrs: dict[str, Any]) -> str:
    """Where a file's given split came from, as reports name it: folders or the label
    file's name."""
    source = str(attrs.get(SPLIT_SOURCE) or "")
    return source if source in ("", "folders") else Path(source).name


def _split(f: h5py.File, path: Path, n: int) -> list[str] | None:
    """The optional per-row split, checked: one known value per row."""
    if "split" not in f:
        return None
    dataset = _dataset(f, path, "split", 1, "T")
    if dataset.shape[0] != n:
        raise FeatureFileError(f"{path}: 'split' has {dataset.shape[0]} rows, the features {n}")
    values = text(dataset, n)
    unknown = sorted(set(values) - set(SPLITS))
    if unknown:
        raise FeatureFileError(f"{path}: 'split' holds {unknown[0]!r}; its values are "
                               f"{', '.join(SPLITS)}")
    return values


def _open(path: Path) -> h5py.File:
    if not path.exists():
        raise FeatureFileError(f"{path}: no such feature file")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise FeatureFileError(
            f"{path}: not a readable HDF5 feature file ({one_line(exc)})"
        ) from None


def _check_header(f: h5py.File, path: Path, allow_partial: bool) -> FeatureHeader:
    """Every check short of reading the features; labels, names and paths are read."""
    try:
        attrs = {k: plain(v) for k, v in f.attrs.items()}
    except (OSError, RuntimeError, TypeError, ValueError) as exc:
        raise FeatureFileError(f"{path}: unreadable attributes ({one_line(exc)})") from None
    if "format_version" not in attrs:
        raise FeatureFileError(
            f"{path}: no format_version attribute; not an offtheshelf file (one you write "
            "yourself needs format_version=1 and complete=True: README, 'The feature file')"
        )
    version = _integer(attrs["format_version"])
    if version is None or version < 1:
        raise FeatureFileError(f"{path}: format_version must be a positive integer")
    if version > FORMAT_VERSION:
        raise FeatureFileError(
            f"{path}: format version {version} is newer than this offtheshelf reads "
            f"({FORMAT_VERSION}); upgrade offtheshelf"
        )
    n_attr = _integer(attrs.get("n_written", 0))
    if n_attr is None or n_attr < 0:
        raise FeatureFileError(f"{path}: n_written must be a non-negative integer")
    if not allow_partial and attrs.get("complete") is not True and "n_written" not in attrs:
        raise FeatureFileError(
            f"{path}: no complete=True attribute: extract sets it when it finishes; on a "
            "file you write yourself, set it once every row is in"
        )
    if not allow_partial and attrs.get("complete") is not True:
        raise FeatureFileError(
            f"{path}: partial extraction ({n_attr} rows written, "
            "complete=False); rerun extract to finish it"
        )
    missing = [name for name in REQUIRED_DATASETS if name not in f]
    if missing:
        raise FeatureFileError(f"{path}: missing dataset(s) {', '.join(missing)}")
    feats = _features_dataset(f, path)
    if feats.dtype == np.float64:  # numpy's default: files users write themselves
        warnings.warn(Float64Note(f"{path}: float64 features, read as float32"), stacklevel=3)
    # Files users write themselves may leave the width out; the dataset has it.
    attrs.setdefault("feature_dim", int(feats.shape[1]))
    labels = _dataset(f, path, "labels", 1, "iu")
    paths_ds = _dataset(f, path, "paths", 1, "T")
    names_ds = _dataset(f, path, "label_names", 1, "T")
    skipped_ds = _dataset(f, path, "skipped", 1, "T") if "skipped" in f else None
    for dataset in (feats, labels, paths_ds):
        _check_parts(dataset, path)
    n = n_attr if "n_written" in attrs else feats.shape[0]
    sizes = {"features": feats.shape[0], "labels": labels.shape[0],
             "paths": paths_ds.shape[0]}
    # A complete file holds exactly n rows; a partial one may hold a cut-short block.
    if any(size < n or (not allow_partial and size != n) for size in sizes.values()):
        raise FeatureFileError(
            f"{path}: row counts disagree (features {sizes['features']}, labels "
            f"{sizes['labels']}, paths {sizes['paths']}, n_written {n})"
        )
    try:
        y = labels[:n]
        label_names = text(names_ds)
        paths = text(paths_ds, n)
        skipped = text(skipped_ds) if skipped_ds is not None else []
        split = _split(f, path, n)
    except (OSError, RuntimeError, TypeError, ValueError) as exc:
        raise FeatureFileError(f"{path}: unreadable data ({one_line(exc)})") from None
    if n and (y.min() < 0 or y.max() >= len(label_names)):
        raise FeatureFileError(
            f"{path}: labels out of range 0..{len(label_names) - 1} (found {y.min()}..{y.max()})"
        )
    return FeatureHeader(path=path, n_rows=n, feature_dim=feats.shape[1], y=y.astype(np.int64),
                         label_names=label_names, paths=paths, attrs=attrs, skipped=skipped,
                         split=split)


class Float64Note(UserWarning):
    """A float64 features dataset, read as float32 (the reader's own conversion, once)."""


def _features_dataset(f: h5py.File, path: Path) -> h5py.Dataset:
    feats = _dataset(f, path, "features", 2, "f")
    if feats.dtype != np.float64 and feats.dtype.itemsize > 4:  # float64: read as float32
        raise FeatureFileError(f"{path}: 'features' must be float16, float32 or float64, "
                               f"found {feats.dtype}")
    return feats


def _read_rows(feats: h5py.Dataset, path: Path, start: int, stop: int) -> np.ndarray:
    """Rows start..stop-1 as float32, read straight into the array (no float16 copy)."""
    try:
        X = np.empty((stop - start, feats.shape[1]), dtype=np.float32)
        if stop > start and feats.shape[1]:
            feats.read_direct(X, np.s_[start:stop])
    except (OSError, RuntimeError, TypeError, ValueError) as exc:
        raise FeatureFileError(f"{path}: unreadable data ({one_line(exc)})") from None
    return X


def nonfinite_rows(X: np.ndarray) -> int:
    """How many rows of X hold a NaN or an infinity."""
    return int((~np.isfinite(X).all(axis=1)).sum())


def nonfinite_error(path: str | os.PathLike, bad: int) -> FeatureFileError:
    """The refusal of a file whose features hold `bad` rows with NaN or infinities."""
    return FeatureFileError(f"{path}: {bad} row(s) hold NaN or infinite features")


def read_header(path: str | os.PathLike, *, allow_partial: bool = False) -> FeatureHeader:
    """Check a feature file as `read_features` does, reading everything but the features.

    The features themselves are then read in blocks with `read_block` (their NaN check
    is the caller's: `nonfinite_rows`, `nonfinite_error`).
    """
    path = Path(path)
    with _open(path) as f:
        return _check_header(f, path, allow_partial)


def read_block(path: str | os.PathLike, start: int, stop: int) -> np.ndarray:
    """Feature rows start..stop-1 of a file already checked by `read_header`, as float32.

    Opens the file itself, so it can run in another process (a Dask worker) than the
    one that checked it; h5py objects cannot be sent between processes.
    """
    path = Path(path)
    with _open(path) as f:
        feats = _features_dataset(f, path)
        if stop > feats.shape[0]:
            raise FeatureFileError(
                f"{path}: features end at row {feats.shape[0]}, rows up to {stop} wanted "
                "(the file changed after it was checked)"
            )
        return _read_rows(feats, path, start, stop)


def read_features(path: str | os.PathLike, *, allow_partial: bool = False) -> Features:
    """Load a feature file, checking it fully, with features as float32 in memory once.

    Anything short of a well-formed file (partial, truncated, wrong shapes or types,
    labels out of range, NaN or infinite features) is a one-line FeatureFileError.
    """
    path = Path(path)
    with _open(path) as f:
        header = _check_header(f, path, allow_partial)
        X = _read_rows(_features_dataset(f, path), path, 0, header.n_rows)
    bad = nonfinite_rows(X)
    if bad:
        raise nonfinite_error(path, bad)
    return Features(X=X, **header.rows())


def read_skipped(path: str | os.PathLike) -> list[str]:
    """The images an extraction could not read, as recorded in its file."""
    with h5py.File(path, "r") as f:
        return text(f["skipped"]) if "skipped" in f else []


def chunk_rows(feature_dim: int, itemsize: int, buffer_size: int) -> int:
    """Rows per HDF5 chunk: about 4 MiB, so a block write touches few chunks."""
    return int(max(1, min(buffer_size, _CHUNK_BYTES // max(1, feature_dim * itemsize))))
