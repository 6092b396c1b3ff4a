"""Part files: the rows of one shard, written aside and published whole.

A part is written under a temporary name, fsynced and renamed when complete, so a
part file that exists holds its whole shard. It also carries a sha256 of its content,
checked before it is skipped on a rerun or consolidated: a truncated or damaged part
is computed again, never used. Only h5py and numpy are imported here.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from extract import featurefile
from extract.writer import AtomicH5Writer

FLOAT16_MAX = float(np.finfo(np.float16).max)
# Beside the parts: what the run is (its dataset, identity and command), so that
# `extract --list` can name an interrupted run and the command that resumes it.
RUN_RECORD = "run.json"


def folder(output: Path) -> Path:
    """Where the parts of `output` live: a sibling folder, so `*.h5` globs never see them."""
    return output.with_name(output.stem + ".parts")


def record_run(output: Path, record: dict[str, Any]) -> None:
    """Keep `record` (JSON values) beside the parts of `output`."""
    (folder(output) / RUN_RECORD).write_text(json.dumps(record, sort_keys=True) + "\n",
                                             encoding="utf-8")


def read_run(where: Path) -> dict[str, Any]:
    """The record kept in the parts folder `where`; {} where there is none (a run of an
    earlier offtheshelf) or it cannot be read."""
    try:
        record = json.loads((where / RUN_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def rows_in(part: Path) -> int:
    """The rows a finished part says it holds (0 where it cannot be read)."""
    try:
        with h5py.File(part, "r") as f:
            return int(f.attrs.get("n_rows", 0))
    except (OSError, RuntimeError, ValueError, TypeError):
        return 0


def content_digest(features: np.ndarray, paths: list[str], skipped: list[str]) -> str:
    """What a part's `sha256` attribute vouches for: its rows, their images, its skips."""
    digest = hashlib.sha256()
    digest.update(_bytes(features))
    digest.update(_listing(paths, skipped))
    return digest.hexdigest()


def _listing(paths: list[str], skipped: list[str]) -> bytes:
    """The digest's bytes for a part's images: its rows' paths, then its skips."""
    return "\0".join(paths).encode() + b"\1" + "\0".join(skipped).encode()


def _bytes(array: np.ndarray) -> memoryview:
    """The array's bytes without a copy (hashlib reads the buffer directly)."""
    if array.size == 0:  # a shard whose every image was unreadable: no rows
        return memoryview(b"")
    return memoryview(np.ascontiguousarray(array)).cast("B")


class Float16RangeError(featurefile.FeatureFileError):
    """A feature value float16 cannot hold (it would be stored as infinity)."""


class PartWriter(AtomicH5Writer):
    """Rows of one shard in buffered blocks into a temporary file beside the part;
    `finish` publishes it with its paths, skipped images and digest.

    The temporary name is the writer's own (`<stem>.<token>.h5.tmp`): a Dask task left
    running by an interrupted client may still be writing the same shard while a rerun
    computes it again, and neither may write over the other's file. Whichever renames
    first publishes the part; both hold the same rows.
    """

    def __init__(self, path: Path, *, feature_dim: int, dtype: str, buffer_size: int,
                 attrs: dict[str, Any], rows: int | None = None):
        # `rows`: the shard's. A chunk is allocated whole, so none is larger than the part.
        super().__init__(
            path, path.with_name(f"{path.stem}.{uuid.uuid4().hex[:8]}{path.suffix}.tmp"),
            feature_dim=feature_dim, dtype=dtype,
            buffer_size=buffer_size if rows is None else min(buffer_size, max(1, rows)),
            way_out=("the shards finished before it are kept in that folder; make "
                     "room, then run the same command again to resume"))
        self.dtype = np.dtype(dtype)
        self._paths: list[str] = []
        self.skipped: list[str] = []
        self._digest = hashlib.sha256()
        with self.writing():
            self.h5.attrs.update(attrs)

    def add(self, row: np.ndarray, path: str) -> None:
        if self.dtype == np.float16 and np.abs(row).max(initial=0.0) > FLOAT16_MAX:
            raise Float16RangeError(
                f"--dtype float16: {path} has features up to {np.abs(row).max():.4g}, beyond "
                f"float16's {FLOAT16_MAX:g}; extract with --dtype float32")
        self._paths.append(path)
        self._buffer(row)

    def skip(self, path: str) -> None:
        self.skipped.append(path)

    def _columns(self, rows: list[np.ndarray]) -> dict[str, np.ndarray]:
        return {"features": np.stack(rows).astype(self.dtype, copy=False)}

    def _flush(self) -> dict[str, np.ndarray] | None:
        columns = super()._flush()
        if columns is not None:  # the digest reads the rows block by block, as written
            self._digest.update(_bytes(columns["features"]))
        return columns

    def finish(self) -> None:
        """Write the last block, the paths and the digest; publish the part."""
        self._flush()
        self._digest.update(_listing(self._paths, self.skipped))
        self._publish({"paths": self._paths, "skipped": self.skipped},
                      {"n_rows": self.n_rows, "sha256": self._digest.hexdigest(),
                       "complete": True})


def read(path: Path, *, key: str) -> tuple[np.ndarray, list[str], list[str], dict[str, Any]]:
    """A complete part's features, paths, skipped images and attributes, checked.

    Anything but a whole part of shard `key` whose content matches its digest is a
    FeatureFileError; the caller computes that shard again.
    """
    try:
        with h5py.File(path, "r") as f:
            attrs = {k: featurefile.plain(v) for k, v in f.attrs.items()}
            if attrs.get("complete") is not True or attrs.get("shard_key") != key:
                raise featurefile.FeatureFileError(f"{path}: not a complete part of this shard")
            features = f["features"][()]
            paths = featurefile.text(f["paths"])
            skipped = featurefile.text(f["skipped"])
    except (OSError, RuntimeError, KeyError, ValueError, TypeError) as exc:
        raise featurefile.FeatureFileError(
            f"{path}: unreadable part ({featurefile.one_line(exc)})") from None
    if len(features) != attrs.get("n_rows") or len(paths) != len(features):
        raise featurefile.FeatureFileError(f"{path}: row counts disagree")
    if content_digest(features, paths, skipped) != attrs.get("sha256"):
        raise featurefile.FeatureFileError(f"{path}: content does not match its sha256")
    return features, paths, skipped, attrs


def is_complete(path: Path, *, key: str) -> bool:
    """Whether `path` is a whole, undamaged part of shard `key` (so it can be skipped)."""
    try:
        read(path, key=key)
    except featurefile.FeatureFileError:
        return False
    return True
