"""One atomic, buffered HDF5 writer: part files and the final feature file both use it.

Rows go in blocks into a temporary file beside the target; the finished file is
fsynced and renamed in one step, so a file under its final name is always whole. A
write the disk refuses becomes one `WriteError` line naming the file and the way
out. Only h5py and numpy are imported here.
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from extract import featurefile

TEXT = h5py.string_dtype(encoding="utf-8")


class WriteError(featurefile.FeatureFileError):
    """A file the disk would not take (full, over quota, read-only)."""


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


class AtomicH5Writer(ABC):
    """Rows of features in buffered blocks into `tmp`, published as `path` when complete.

    A subclass says what a buffered row is and which columns a block of them fills
    (`_columns`), creates its other columns with `create_column`, and finishes with
    `_publish`; `abandon` drops the file (the final name is never touched).
    """

    def __init__(self, path: Path, tmp: Path, *, feature_dim: int, dtype: str | np.dtype,
                 buffer_size: int, way_out: str, compression: str | None = None):
        self.path = Path(path)
        self.tmp = tmp
        self.buffer_size = buffer_size
        self.n_rows = 0
        self._way_out = way_out
        self._pending: list[Any] = []
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.writing():
            # No chunk cache: each block goes to disk as it is written, so a full disk
            # fails that write. With the cache, the failure came at the cache's flush on
            # close, and HDF5 1.14 then crashed the process (SIGSEGV) closing the file.
            self.h5 = h5py.File(self.tmp, "w", rdcc_nbytes=0)
        with self.writing():
            self.chunk_rows = featurefile.chunk_rows(feature_dim, np.dtype(dtype).itemsize,
                                                     buffer_size)
            self.create_column("features", dtype, width=(feature_dim,),
                               chunk_rows=self.chunk_rows, compression=compression)

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Turn a failed write into one line: the file, the system's reason (h5py raises
        OSError or RuntimeError with HDF5's report over several lines), the way out."""
        try:
            yield
        except (OSError, RuntimeError) as exc:
            found = re.search(r"error message = '([^']*)'", str(exc))
            reason = (found.group(1) if found else getattr(exc, "strerror", None)
                      or featurefile.one_line(exc))
            raise WriteError(f"{self.tmp}: cannot write ({reason}); {self._way_out}") from None

    def create_column(self, name: str, dtype: Any, *, width: tuple[int, ...] = (),
                      chunk_rows: int, compression: str | None = None) -> None:
        """A dataset that grows by one entry of shape `width` per row written."""
        self.h5.create_dataset(name, shape=(0, *width), maxshape=(None, *width), dtype=dtype,
                               chunks=(chunk_rows, *width), compression=compression)

    def _buffer(self, row: Any) -> None:
        self._pending.append(row)
        if len(self._pending) >= self.buffer_size:
            self._flush()

    @abstractmethod
    def _columns(self, rows: list[Any]) -> dict[str, np.ndarray]:
        """The block of each column that `rows` (as buffered) fill."""

    def _flush(self) -> dict[str, np.ndarray] | None:
        """Append the buffered rows to their columns; the block written, None if none."""
        if not self._pending:
            return None
        columns = self._columns(self._pending)
        start, n = self.n_rows, len(self._pending)
        with self.writing():
            for name, data in columns.items():
                self.h5[name].resize(start + n, axis=0)
                self.h5[name][start:] = data
        self.n_rows += n
        self._pending = []
        return columns

    def _publish(self, texts: dict[str, Sequence[str]], attrs: dict[str, Any]) -> None:
        """After the last block: add the lists of text and the attributes that complete
        the file, close it and rename it into place."""
        with self.writing():
            for name, values in texts.items():
                self.h5.create_dataset(name, data=np.array(list(values), dtype=object),
                                       dtype=TEXT)
            self.h5.attrs.update(attrs)
            self.h5.close()
            publish(self.tmp, self.path)

    def abandon(self) -> None:
        """Close and delete the unfinished file (a failure or Ctrl-C). Its close can fail
        as well (the disk that failed a write fails the flush too); the error already on
        its way up says why, so this one is not raised over it."""
        if self.h5.id.valid:
            try:
                self.h5.close()
            except (OSError, RuntimeError):
                pass  # see the docstring: the first error is the one reported
        self.tmp.unlink(missing_ok=True)
