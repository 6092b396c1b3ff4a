"""The HDF5 feature file (format version 1): the one contract between the two stages.

Only h5py and numpy are imported here, so `classify` can read features on a machine
without TensorFlow. Writing is append-only in blocks: rows reach the disk first, then
`n_written` (and `n_scanned`, the cursor into the sorted file list) move forward, and
`complete` is set last. A file is therefore always either complete or resumable.
"""

from __future__ import annotations

import datetime as _dt
import errno
import fcntl
import io
import os
import signal
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
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


def _attr(value: Any) -> Any:
    """h5py attributes come back as numpy scalars or bytes; make them plain Python."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def feature_file_name(dataset: str, backbone: str, pooling: str) -> str:
    """<dataset>-<backbone>-<pooling>.h5: the name extract writes and classify looks for."""
    stem = Path(dataset.rstrip("/")).name or "dataset"
    return f"{stem}-{backbone}-{pooling}.h5"


def read_attrs(path: str | os.PathLike) -> dict[str, Any]:
    """Root attributes of a feature file as plain Python values."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            return {k: _attr(v) for k, v in f.attrs.items()}
    except FileNotFoundError:
        raise FeatureFileError(f"{path}: no such feature file") from None
    except OSError as exc:
        raise FeatureFileError(
            f"{path}: not a readable HDF5 feature file ({_one_line(exc)})"
        ) from None


def _one_line(exc: BaseException) -> str:
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
        raise FeatureFileError(f"{path}: dataset {name!r} unreadable ({_one_line(exc)})") from None
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


def _text(dataset: h5py.Dataset, stop: int | None = None) -> list[str]:
    values = dataset[()] if stop is None else dataset[:stop]
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


@dataclass
class FeatureHeader:
    """A checked feature file without its feature matrix: what a client needs to plan
    reading the rows elsewhere (`classify --cluster`) or all at once (`read_features`)."""

    path: Path
    n_rows: int
    feature_dim: int
    y: np.ndarray
    label_names: list[str]
    paths: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def _open(path: Path) -> h5py.File:
    if not path.exists():
        raise FeatureFileError(f"{path}: no such feature file")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise FeatureFileError(
            f"{path}: not a readable HDF5 feature file ({_one_line(exc)})"
        ) from None


def _check_header(f: h5py.File, path: Path, allow_partial: bool) -> FeatureHeader:
    """Every check short of reading the features; labels, names and paths are read."""
    try:
        attrs = {k: _attr(v) for k, v in f.attrs.items()}
    except (OSError, RuntimeError, TypeError, ValueError) as exc:
        raise FeatureFileError(f"{path}: unreadable attributes ({_one_line(exc)})") from None
    if "format_version" not in attrs:
        raise FeatureFileError(f"{path}: no format_version attribute; not an offtheshelf file")
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
    if not allow_partial and attrs.get("complete") is not True:
        raise FeatureFileError(
            f"{path}: partial extraction ({n_attr} rows written, "
            "complete=False); rerun extract to finish it"
        )
    missing = [name for name in REQUIRED_DATASETS if name not in f]
    if missing:
        raise FeatureFileError(f"{path}: missing dataset(s) {', '.join(missing)}")
    feats = _features_dataset(f, path)
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
        label_names = _text(names_ds)
        paths = _text(paths_ds, n)
        skipped = _text(skipped_ds) if skipped_ds is not None else []
    except (OSError, RuntimeError, TypeError, ValueError) as exc:
        raise FeatureFileError(f"{path}: unreadable data ({_one_line(exc)})") from None
    if n and (y.min() < 0 or y.max() >= len(label_names)):
        raise FeatureFileError(
            f"{path}: labels out of range 0..{len(label_names) - 1} (found {y.min()}..{y.max()})"
        )
    return FeatureHeader(path, n, feats.shape[1], y.astype(np.int64), label_names, paths,
                         attrs, skipped)


class Float64Note(UserWarning):
    """A float64 features dataset, read as float32 (the reader's own conversion, once)."""


def _features_dataset(f: h5py.File, path: Path) -> h5py.Dataset:
    feats = _dataset(f, path, "features", 2, "f")
    if feats.dtype == np.float64:  # numpy's default: files users write themselves
        warnings.warn(Float64Note(f"{path}: float64 features, read as float32"), stacklevel=2)
    elif feats.dtype.itemsize > 4:
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
        raise FeatureFileError(f"{path}: unreadable data ({_one_line(exc)})") from None
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
    return Features(path, X, header.y, header.label_names, header.paths, header.attrs,
                    header.skipped)


def read_skipped(path: str | os.PathLike) -> list[str]:
    """The images an extraction could not read, as recorded in its file."""
    with h5py.File(path, "r") as f:
        return _text(f["skipped"]) if "skipped" in f else []


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


@contextmanager
def _ctrl_c_deferred() -> Iterator[None]:
    """Hold a Ctrl-C back until the block is done, then deliver it.

    A KeyboardInterrupt between the two counter updates would leave them apart in
    HDF5's cache, and closing the file would then write that half-moved pair to disk.
    """
    previous = signal.getsignal(signal.SIGINT)
    if previous is None or threading.current_thread() is not threading.main_thread():
        yield  # a handler set outside Python, or not the thread signals interrupt
        return
    caught: list[Any] = []
    signal.signal(signal.SIGINT, lambda signum, frame: caught.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught and callable(previous):
            previous(signal.SIGINT, caught[0])
        elif caught and previous == signal.SIG_DFL:
            os.kill(os.getpid(), signal.SIGINT)


def _chunk_bytes(dataset: h5py.Dataset) -> int:
    """Bytes one chunk of `dataset` takes on disk (a variable-length string: 16)."""
    itemsize = 16 if dataset.dtype.kind == "O" else dataset.dtype.itemsize
    return int(np.prod(dataset.chunks)) * itemsize


def _scrub_strings(dataset: h5py.Dataset, keep: int) -> None:
    """Blank the string references past row `keep` in the chunk holding that row.

    A block cut short can leave references to heap entries that never reached the disk,
    and HDF5 crashes (or corrupts the file) when it later writes over one: it frees the
    old entry first. A zeroed reference is an empty string it leaves alone. Chunks
    wholly past `keep` are dropped when the dataset is cut to `keep` rows.
    """
    (rows,) = dataset.chunks
    start = keep // rows * rows
    if start == keep:
        return
    try:
        mask, raw = dataset.id.read_direct_chunk((start,))
    except (OSError, RuntimeError, ValueError):
        return  # never written: nothing stale
    cut = (keep - start) * (len(raw) // rows)
    dataset.id.write_direct_chunk((start,), raw[:cut] + bytes(len(raw) - cut), mask)


def _lock_message(path: Path) -> str:
    return f"{path}: another extract is writing this file; wait for it or pick --output"


@contextmanager
def output_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold `path`'s writer lock for a whole run that writes it by other means
    (`extract --cluster` assembles it from part files at the end)."""
    fd = FeatureWriter._lock(Path(path))
    try:
        yield
    finally:
        os.close(fd)


def check_unlocked(path: str | os.PathLike) -> None:
    """Fail fast, before `path` is even read, when another extract is writing it.

    The writer's own lock is what guarantees one writer; this early look only spares
    the user a misleading first line (a file being written cannot be read) and the
    wait for TensorFlow to load.
    """
    try:
        fd = os.open(f"{path}.lock", os.O_RDONLY)
    except OSError:
        return  # no lock file yet, so nobody is writing; the writer locks for real
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        raise OutputLockedError(_lock_message(Path(path))) from None
    finally:
        os.close(fd)


class FeatureWriter:
    """Appends rows to a feature file in buffered blocks, durably and in order.

    Open with `FeatureWriter.create(...)` for a new file or `FeatureWriter.resume(...)`
    for a partial one; call `add` per batch, `finish` at the end. Holds an exclusive
    lock on `<path>.lock` so two processes never write the same file.

    Whatever stops it leaves a file that is complete or resumable: a SIGKILL before any
    line, a Ctrl-C before any line of the writing path, a full disk (tests/faults).
    """

    def __init__(self, path: Path, h5: h5py.File, lock_fd: int, buffer_size: int):
        self.path = path
        self._h5 = h5
        self._lock_fd = lock_fd
        self.buffer_size = buffer_size
        # One list of (row, label, path): a single append per image, so a Ctrl-C can
        # never leave a row without its label or path.
        self._rows: list[tuple[np.ndarray, int, str]] = []
        self._skipped: list[str] = []
        self._reserved = False
        self.n_written = int(h5.attrs["n_written"])
        self.n_scanned = int(h5.attrs["n_scanned"])

    # -- opening ---------------------------------------------------------------------
    @staticmethod
    def _lock(path: Path) -> int:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            os.close(fd)
            raise OutputLockedError(_lock_message(path)) from None
        except BaseException:  # a Ctrl-C right after locking: never keep a stray lock
            os.close(fd)
            raise

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
        with cls._lock_for_writer(path) as fd:
            # The empty file is built in memory and written with plain I/O: a full disk
            # is then an ordinary OSError, not an HDF5 file left half-written and open.
            image = io.BytesIO()
            with h5py.File(image, "w") as f:
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
            tmp = path.with_name(path.name + ".new")
            try:
                tmp.write_bytes(image.getvalue())
            except OSError as exc:
                tmp.unlink(missing_ok=True)
                raise FeatureFileError(
                    f"{path}: cannot create the feature file ({exc.strerror or exc}); "
                    "free some space or pick another --output"
                ) from None
            os.replace(tmp, path)  # an empty, well-formed partial file, never half a header
            return cls._open(path, fd, buffer_size)

    @classmethod
    def resume(cls, path: str | os.PathLike, *, buffer_size: int = 1000) -> FeatureWriter:
        path = Path(path)
        with cls._lock_for_writer(path) as fd:
            return cls._open(path, fd, buffer_size)

    @classmethod
    @contextmanager
    def _lock_for_writer(cls, path: Path) -> Iterator[int]:
        """The lock, handed to the writer being opened; released if opening fails."""
        fd = cls._lock(path)
        try:
            yield fd
        except BaseException:
            os.close(fd)
            raise

    @classmethod
    def _open(cls, path: Path, fd: int, buffer_size: int) -> FeatureWriter:
        """Open `path` for appending, cutting off what a block cut short left behind."""
        h5 = h5py.File(path, "r+")
        try:
            n, scanned = int(h5.attrs["n_written"]), int(h5.attrs["n_scanned"])
            # Rows past n_written belong to a block that was cut short: drop them. Every
            # scanned image was written or skipped, so the skipped list is cut to match.
            for name, keep in (("features", n), ("labels", n), ("paths", n),
                               ("skipped", scanned - n)):
                if h5[name].dtype.kind == "O":
                    _scrub_strings(h5[name], keep)
                h5[name].resize(keep, axis=0)
            return cls(path, h5, fd, buffer_size)
        except BaseException:
            h5.close()
            raise

    # -- writing ---------------------------------------------------------------------
    def add(self, row: np.ndarray, label: int, path: str) -> None:
        """Queue one image's features; writes a block whenever the buffer is full."""
        self._rows.append((row, label, path))
        if len(self._rows) >= self.buffer_size:
            self.flush()

    def skip(self, path: str) -> None:
        """Record an unreadable image; it counts as scanned so a resume skips it too."""
        self._skipped.append(path)

    def _reserve(self, nbytes: int) -> None:
        """Claim disk space for the next block before HDF5 writes any of it.

        HDF5 failing half-way through a write leaves a file it cannot open again; a
        full disk met here leaves the file exactly as the last block left it.
        """
        if not hasattr(os, "posix_fallocate"):
            return
        fd = self._h5.id.get_vfd_handle()
        try:
            os.posix_fallocate(fd, self._h5.id.get_filesize(), nbytes)
        except OSError as exc:
            if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP, errno.ENODEV):
                return  # a filesystem that cannot reserve: write and hope
            raise FeatureFileError(
                f"{self.path}: cannot write the next block ({exc.strerror or exc}); "
                f"{self.n_written} images are safely in the file; free some space and "
                "run the same command again to resume"
            ) from None
        self._reserved = True

    def flush(self) -> None:
        """Write the buffered rows as one block, then advance the counters."""
        rows, skipped = self._rows, self._skipped
        if not rows and not skipped:
            return
        f = self._h5
        start, n_new = self.n_written, len(rows)
        block = (np.stack([r for r, _, _ in rows]).astype(f["features"].dtype, copy=False)
                 if n_new else np.empty(0))
        # The block, two fresh chunks per dataset it may start, its strings, and room
        # for HDF5's own bookkeeping.
        chunks = sum(_chunk_bytes(f[name]) for name in ("features", "labels", "paths", "skipped"))
        strings = sum(len(p.encode()) + 64 for p in [p for _, _, p in rows] + skipped)
        self._reserve(block.nbytes + 2 * chunks + strings + (1 << 20))
        if n_new:
            for name, data in (
                ("features", block),
                ("labels", np.array([label for _, label, _ in rows], dtype=np.int32)),
                ("paths", np.array([p for _, _, p in rows], dtype=object)),
            ):
                f[name].resize(start + n_new, axis=0)
                f[name][start:] = data
        if skipped:  # like the rows, at a fixed place: writing the block twice is harmless
            dataset, old = f["skipped"], self.n_scanned - start
            dataset.resize(old + len(skipped), axis=0)
            dataset[old:] = np.array(skipped, dtype=object)
        f.flush()  # rows on disk before the counters that vouch for them
        n_written, n_scanned = start + n_new, self.n_scanned + n_new + len(skipped)
        with _ctrl_c_deferred():  # the two counters move together or not at all
            f.attrs["n_written"] = n_written
            f.attrs["n_scanned"] = n_scanned
            f.flush()
            self.n_written, self.n_scanned = n_written, n_scanned
            self._rows, self._skipped = [], []

    def finish(self) -> None:
        """Flush the last block and mark the file complete (the very last write)."""
        self.flush()
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
                if self._reserved:  # reopening for writing trims the unused reservation
                    self._reserved = False
                    try:
                        h5py.File(self.path, "r+").close()
                    except OSError:
                        pass  # only wasted space; the file itself is whole
        finally:
            fd, self._lock_fd = self._lock_fd, -1
            if fd >= 0:
                os.close(fd)

    def __enter__(self) -> FeatureWriter:  # noqa: PYI034 - Self needs Python 3.11
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        # Ctrl-C keeps the rows computed so far; any other failure writes nothing more.
        self.close(keep_buffer=exc_type is None or issubclass(exc_type, KeyboardInterrupt))
