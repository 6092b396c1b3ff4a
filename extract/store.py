"""The HDF5 feature file (format version 1): the one contract between the two stages.

Only h5py and numpy are imported here, so `classify` can read features on a machine
without TensorFlow. Writing is append-only in blocks: rows reach the disk first, then
`n_written` (and `n_scanned`, the cursor into the sorted file list) move forward, and
`complete` is set last. A file is therefore always either complete or resumable.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

FORMAT_VERSION = 1
REQUIRED_DATASETS = ("features", "labels", "label_names", "paths")
# Attributes that decide whether an existing file may be reused or resumed.
SETTINGS_KEYS = (
    "backbone",
    "weights",
    "pooling",
    "input_size",
    "preprocessing",
    "dtype",
    "dataset_fingerprint",
)
_STR = h5py.string_dtype(encoding="utf-8")
_CHUNK_BYTES = 4 * 1024 * 1024


class FeatureFileError(Exception):
    """A feature file that cannot be used; the message names the file and the fault."""


class OutputLockedError(FeatureFileError):
    """Another process is writing the same output file."""


@dataclass
class Features:
    """Everything `classify` and `predict` need from a complete feature file."""

    path: Path
    X: np.ndarray
    y: np.ndarray
    label_names: list[str]
    paths: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def _decode(values: Any) -> list[str]:
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


def _attr(value: Any) -> Any:
    """h5py attributes come back as numpy scalars or bytes; make them plain Python."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def read_attrs(path: str | os.PathLike) -> dict[str, Any]:
    """Root attributes of a feature file as plain Python values."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            return {k: _attr(v) for k, v in f.attrs.items()}
    except FileNotFoundError:
        raise FeatureFileError(f"{path}: no such feature file") from None
    except OSError as exc:
        raise FeatureFileError(f"{path}: not a readable HDF5 feature file ({exc})") from None


def read_features(path: str | os.PathLike, *, allow_partial: bool = False) -> Features:
    """Load a feature file, checking it fully, with features as float32 in memory once."""
    path = Path(path)
    if not path.exists():
        raise FeatureFileError(f"{path}: no such feature file")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise FeatureFileError(f"{path}: not a readable HDF5 feature file ({exc})") from None
    with f:
        attrs = {k: _attr(v) for k, v in f.attrs.items()}
        version = attrs.get("format_version")
        if version is None:
            raise FeatureFileError(f"{path}: no format_version attribute; not an offtheshelf file")
        if int(version) > FORMAT_VERSION:
            raise FeatureFileError(
                f"{path}: format version {version} is newer than this offtheshelf reads "
                f"({FORMAT_VERSION}); upgrade offtheshelf"
            )
        if not allow_partial and not attrs.get("complete", False):
            raise FeatureFileError(
                f"{path}: partial extraction ({attrs.get('n_written', 0)} rows written, "
                "complete=False); rerun extract to finish it"
            )
        missing = [name for name in REQUIRED_DATASETS if name not in f]
        if missing:
            raise FeatureFileError(f"{path}: missing dataset(s) {', '.join(missing)}")
        n = int(attrs.get("n_written", f["features"].shape[0]))
        feats = f["features"]
        if feats.ndim != 2:
            raise FeatureFileError(f"{path}: 'features' must be 2-D, found shape {feats.shape}")
        sizes = {name: f[name].shape[0] for name in ("features", "labels", "paths")}
        if any(size < n for size in sizes.values()) or (
            not allow_partial and len(set(sizes.values())) != 1
        ):
            raise FeatureFileError(
                f"{path}: row counts disagree (features {sizes['features']}, labels "
                f"{sizes['labels']}, paths {sizes['paths']}, n_written {n})"
            )
        try:
            X = np.empty((n, feats.shape[1]), dtype=np.float32)
            if n:
                feats.read_direct(X, np.s_[:n])
            y = np.asarray(f["labels"][:n], dtype=np.int64)
            label_names = _decode(f["label_names"][()])
            paths = _decode(f["paths"][:n])
            skipped = _decode(f["skipped"][()]) if "skipped" in f else []
        except (OSError, TypeError, ValueError) as exc:
            raise FeatureFileError(f"{path}: unreadable data ({exc})") from None
    if n and (y.min() < 0 or y.max() >= len(label_names)):
        raise FeatureFileError(
            f"{path}: labels out of range 0..{len(label_names) - 1} (found {y.min()}..{y.max()})"
        )
    if not np.isfinite(X).all():
        bad = int((~np.isfinite(X).all(axis=1)).sum())
        raise FeatureFileError(f"{path}: {bad} row(s) hold NaN or infinite features")
    return Features(path, X, y, label_names, paths, attrs, skipped)


def read_skipped(path: str | os.PathLike) -> list[str]:
    """The images an extraction could not read, as recorded in its file."""
    with h5py.File(path, "r") as f:
        return _decode(f["skipped"][()]) if "skipped" in f else []


def resolve_newest(folder: str | os.PathLike) -> Path:
    """The most recently modified complete feature file in `folder`."""
    folder = Path(folder)
    candidates = sorted(folder.glob("*.h5"), key=lambda p: p.stat().st_mtime, reverse=True)
    for candidate in candidates:
        try:
            if read_attrs(candidate).get("complete"):
                return candidate
        except FeatureFileError:
            continue
    raise FeatureFileError(f"{folder}: no complete feature file; run extract first")


def chunk_rows(feature_dim: int, itemsize: int, buffer_size: int) -> int:
    """Rows per HDF5 chunk: about 4 MiB, so a block write touches few chunks."""
    return int(max(1, min(buffer_size, _CHUNK_BYTES // max(1, feature_dim * itemsize))))


class FeatureWriter:
    """Appends rows to a feature file in buffered blocks, durably and in order.

    Open with `FeatureWriter.create(...)` for a new file or `FeatureWriter.resume(...)`
    for a partial one; call `add` per batch, `finish` at the end. Holds an exclusive
    lock on `<path>.lock` so two processes never write the same file.
    """

    def __init__(self, path: Path, h5: h5py.File, lock_fd: int, buffer_size: int):
        self.path = path
        self._h5 = h5
        self._lock_fd = lock_fd
        self.buffer_size = buffer_size
        self._rows: list[np.ndarray] = []
        self._labels: list[int] = []
        self._paths: list[str] = []
        self._skipped: list[str] = []
        self._scanned = 0
        self.n_written = int(h5.attrs["n_written"])
        self.n_scanned = int(h5.attrs["n_scanned"])

    # -- opening ---------------------------------------------------------------------
    @staticmethod
    def _lock(path: Path) -> int:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputLockedError(
                f"{path}: another extract is writing this file; wait for it or pick --output"
            ) from None
        return fd

    @classmethod
    def create(
        cls,
        path: str | os.PathLike,
        *,
        feature_dim: int,
        label_names: list[str],
        attrs: dict[str, Any],
        dtype: str = "float32",
        buffer_size: int = 1000,
        compression: str | None = None,
    ) -> FeatureWriter:
        path = Path(path)
        fd = cls._lock(path)
        try:
            tmp = path.with_name(path.name + ".new")
            with h5py.File(tmp, "w") as f:
                rows = chunk_rows(feature_dim, np.dtype(dtype).itemsize, buffer_size)
                f.create_dataset(
                    "features",
                    shape=(0, feature_dim),
                    maxshape=(None, feature_dim),
                    dtype=dtype,
                    chunks=(rows, feature_dim),
                    compression=compression,
                )
                f.create_dataset("labels", shape=(0,), maxshape=(None,), dtype="int32",
                                 chunks=(max(rows, 1024),))
                f.create_dataset("paths", shape=(0,), maxshape=(None,), dtype=_STR,
                                 chunks=(max(rows, 1024),))
                f.create_dataset("skipped", shape=(0,), maxshape=(None,), dtype=_STR,
                                 chunks=(1024,))
                f.create_dataset("label_names", data=np.array(label_names, dtype=object),
                                 dtype=_STR)
                f.attrs.update(
                    {
                        "format_version": FORMAT_VERSION,
                        "feature_dim": feature_dim,
                        "dtype": dtype,
                        "n_written": 0,
                        "n_scanned": 0,
                        "complete": False,
                        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(
                            timespec="seconds"
                        ),
                        "h5py_version": h5py.__version__,
                        "hdf5_version": h5py.version.hdf5_version,
                        "numpy_version": np.__version__,
                        **attrs,
                    }
                )
            os.replace(tmp, path)  # an empty, well-formed partial file, never half a header
            return cls(path, h5py.File(path, "r+"), fd, buffer_size)
        except BaseException:
            os.close(fd)
            raise

    @classmethod
    def resume(cls, path: str | os.PathLike, *, buffer_size: int = 1000) -> FeatureWriter:
        path = Path(path)
        fd = cls._lock(path)
        try:
            h5 = h5py.File(path, "r+")
            n = int(h5.attrs["n_written"])
            # Rows past n_written belong to a block that was cut short: drop them.
            for name in ("features", "labels", "paths"):
                h5[name].resize(n, axis=0)
            return cls(path, h5, fd, buffer_size)
        except BaseException:
            os.close(fd)
            raise

    # -- writing ---------------------------------------------------------------------
    def add(self, row: np.ndarray, label: int, path: str) -> None:
        """Queue one image's features; writes a block whenever the buffer is full."""
        self._rows.append(row)
        self._labels.append(label)
        self._paths.append(path)
        self._scanned += 1
        if len(self._paths) >= self.buffer_size:
            self.flush()

    def skip(self, path: str) -> None:
        """Record an unreadable image; it counts as scanned so a resume skips it too."""
        self._skipped.append(path)
        self._scanned += 1

    def flush(self) -> None:
        """Write the buffered rows as one block, then advance the counters."""
        if not self._scanned:
            return
        f = self._h5
        n_new = len(self._paths)
        if n_new:
            start = self.n_written
            block = np.stack(self._rows).astype(f["features"].dtype, copy=False)
            for name, data in (
                ("features", block),
                ("labels", np.array(self._labels, dtype=np.int32)),
                ("paths", np.array(self._paths, dtype=object)),
            ):
                f[name].resize(start + n_new, axis=0)
                f[name][start:] = data
        if self._skipped:
            skipped = f["skipped"]
            old = skipped.shape[0]
            skipped.resize(old + len(self._skipped), axis=0)
            skipped[old:] = np.array(self._skipped, dtype=object)
        f.flush()  # rows on disk before the counters that vouch for them
        f.attrs["n_written"] = self.n_written + n_new
        f.attrs["n_scanned"] = self.n_scanned + self._scanned
        f.flush()
        self.n_written += n_new
        self.n_scanned += self._scanned
        self._rows, self._labels, self._paths, self._skipped = [], [], [], []
        self._scanned = 0

    def finish(self, **attrs: Any) -> None:
        """Flush the last block and mark the file complete (the very last write)."""
        self.flush()
        self._h5.attrs.update(attrs)
        self._h5.flush()
        self._h5.attrs["complete"] = True
        self.close()

    def close(self, *, keep_buffer: bool = True) -> None:
        """Release the file and its lock (safe to call twice).

        Buffered rows are written first unless `keep_buffer` is False: after an I/O
        error (a full disk) they are dropped, and a resume computes them again.
        """
        try:
            if self._h5.id.valid:
                try:
                    if keep_buffer:
                        self.flush()
                finally:
                    self._h5.close()
        finally:
            if self._lock_fd >= 0:
                os.close(self._lock_fd)
                self._lock_fd = -1

    def __enter__(self) -> FeatureWriter:  # noqa: PYI034 - Self needs Python 3.11
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        # Ctrl-C keeps the rows computed so far; any other failure writes nothing more.
        self.close(keep_buffer=exc_type is None or issubclass(exc_type, KeyboardInterrupt))

