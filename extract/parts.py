"""Part files: the rows of one shard, written aside and published whole.

A part is written under a temporary name, fsynced and renamed when complete, so a
part file that exists holds its whole shard. It also carries a sha256 of its content,
checked before it is skipped on a rerun or consolidated: a truncated or damaged part
is computed again, never used. Only h5py and numpy are imported here.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from extract import store

_STR = h5py.string_dtype(encoding="utf-8")
FLOAT16_MAX = float(np.finfo(np.float16).max)


def folder(output: Path) -> Path:
    """Where the parts of `output` live: a sibling folder, so `*.h5` globs never see them."""
    return output.with_name(output.stem + ".parts")


def publish(tmp: Path, final: Path) -> None:
    """Make the finished file `tmp` durable, then move it to `final` in one step."""
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, final)
    directory = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power cut
    finally:
        os.close(directory)


def content_digest(features: np.ndarray, paths: list[str], skipped: list[str]) -> str:
    """What a part's `sha256` attribute vouches for: its rows, their images, its skips."""
    digest = hashlib.sha256()
    digest.update(_bytes(features))
    digest.update("\0".join(paths).encode() + b"\1" + "\0".join(skipped).encode())
    return digest.hexdigest()


def _bytes(array: np.ndarray) -> memoryview:
    """The array's bytes without a copy (hashlib reads the buffer directly)."""
    if array.size == 0:  # a shard whose every image was unreadable: no rows
        return memoryview(b"")
    return memoryview(np.ascontiguousarray(array)).cast("B")


class WriteError(store.FeatureFileError):
    """A file the disk would not take (full, over quota, read-only)."""


@contextmanager
def writing(path: Path, way_out: str) -> Iterator[None]:
    """Turn a failed write of `path` into one line: the file, the system's reason (h5py
    raises OSError or RuntimeError with HDF5's report over several lines), `way_out`."""
    try:
        yield
    except (OSError, RuntimeError) as exc:
        found = re.search(r"error message = '([^']*)'", str(exc))
        reason = (found.group(1) if found else getattr(exc, "strerror", None)
                  or store.one_line(exc))
        raise WriteError(f"{path}: cannot write ({reason}); {way_out}") from None


def open_for_writing(path: Path) -> h5py.File:
    """A new HDF5 file with no chunk cache: each block goes to disk as it is written, so
    a full disk fails that write. With the cache, the failure came at the cache's flush
    on close, and HDF5 1.14 then crashed the process (SIGSEGV) closing the file."""
    return h5py.File(path, "w", rdcc_nbytes=0)


def close_after_failure(h5: h5py.File) -> None:
    """Close a file being dropped. Its close can fail as well (the disk that failed a
    write fails the flush too); the error already on its way up says why, so this one
    is not raised over it."""
    if h5.id.valid:
        try:
            h5.close()
        except (OSError, RuntimeError):
            pass  # see the docstring: the first error is the one reported


class Float16RangeError(store.FeatureFileError):
    """A feature value float16 cannot hold (it would be stored as infinity)."""


class PartWriter:
    """Rows of one shard in buffered blocks into a temporary file beside the part;
    `finish` publishes it.

    The temporary name is the writer's own (`<stem>.<token>.h5.tmp`): a Dask task left
    running by an interrupted client may still be writing the same shard while a rerun
    computes it again, and neither may write over the other's file. Whichever renames
    first publishes the part; both hold the same rows.
    """

    def __init__(self, path: Path, *, feature_dim: int, dtype: str, buffer_size: int,
                 attrs: dict[str, Any]):
        self.path = path
        self.tmp = path.with_name(f"{path.stem}.{uuid.uuid4().hex[:8]}{path.suffix}.tmp")
        self.dtype = np.dtype(dtype)
        self.buffer_size = buffer_size
        self._rows: list[np.ndarray] = []
        self._paths: list[str] = []
        self.skipped: list[str] = []
        self.n_rows = 0
        self._digest = hashlib.sha256()
        self._all_paths: list[str] = []
        self._way_out = ("the shards finished before it are kept in that folder; make "
                         "room, then run the same command again to resume")
        path.parent.mkdir(parents=True, exist_ok=True)
        with writing(self.tmp, self._way_out):
            self._h5 = open_for_writing(self.tmp)
        with writing(self.tmp, self._way_out):
            rows = store.chunk_rows(feature_dim, self.dtype.itemsize, buffer_size)
            self._features = self._h5.create_dataset(
                "features", shape=(0, feature_dim), maxshape=(None, feature_dim),
                dtype=self.dtype, chunks=(rows, feature_dim))
            self._h5.attrs.update(attrs)

    def add(self, row: np.ndarray, path: str) -> None:
        if self.dtype == np.float16 and np.abs(row).max(initial=0.0) > FLOAT16_MAX:
            raise Float16RangeError(
                f"--dtype float16: {path} has features up to {np.abs(row).max():.4g}, beyond "
                f"float16's {FLOAT16_MAX:g}; extract with --dtype float32")
        self._rows.append(row)
        self._paths.append(path)
        if len(self._rows) >= self.buffer_size:
            self._flush()

    def skip(self, path: str) -> None:
        self.skipped.append(path)

    def _flush(self) -> None:
        if not self._rows:
            return
        block = np.stack(self._rows).astype(self.dtype, copy=False)
        with writing(self.tmp, self._way_out):
            self._features.resize(self.n_rows + len(block), axis=0)
            self._features[self.n_rows:] = block
        self._digest.update(_bytes(block))
        self.n_rows += len(block)
        self._all_paths.extend(self._paths)
        self._rows, self._paths = [], []

    def finish(self) -> None:
        """Write the last block, the paths and the digest; publish the part."""
        self._flush()
        self._digest.update("\0".join(self._all_paths).encode() + b"\1"
                            + "\0".join(self.skipped).encode())
        f = self._h5
        with writing(self.tmp, self._way_out):
            f.create_dataset("paths", data=np.array(self._all_paths, dtype=object),
                             dtype=_STR)
            f.create_dataset("skipped", data=np.array(self.skipped, dtype=object),
                             dtype=_STR)
            f.attrs["n_rows"] = self.n_rows
            f.attrs["sha256"] = self._digest.hexdigest()
            f.attrs["complete"] = True
            f.close()
            publish(self.tmp, self.path)

    def abandon(self) -> None:
        """Drop the unfinished part (a failure or Ctrl-C): the shard runs again next time."""
        close_after_failure(self._h5)
        self.tmp.unlink(missing_ok=True)


def read(path: Path, *, key: str) -> tuple[np.ndarray, list[str], list[str], dict[str, Any]]:
    """A complete part's features, paths, skipped images and attributes, checked.

    Anything but a whole part of shard `key` whose content matches its digest is a
    FeatureFileError; the caller computes that shard again.
    """
    try:
        with h5py.File(path, "r") as f:
            attrs = {k: store.plain(v) for k, v in f.attrs.items()}
            if attrs.get("complete") is not True or attrs.get("shard_key") != key:
                raise store.FeatureFileError(f"{path}: not a complete part of this shard")
            features = f["features"][()]
            paths = store.text(f["paths"])
            skipped = store.text(f["skipped"])
    except (OSError, RuntimeError, KeyError, ValueError, TypeError) as exc:
        raise store.FeatureFileError(f"{path}: unreadable part ({store.one_line(exc)})") from None
    if len(features) != attrs.get("n_rows") or len(paths) != len(features):
        raise store.FeatureFileError(f"{path}: row counts disagree")
    if content_digest(features, paths, skipped) != attrs.get("sha256"):
        raise store.FeatureFileError(f"{path}: content does not match its sha256")
    return features, paths, skipped, attrs


def is_complete(path: Path, *, key: str) -> bool:
    """Whether `path` is a whole, undamaged part of shard `key` (so it can be skipped)."""
    try:
        read(path, key=key)
    except store.FeatureFileError:
        return False
    return True
