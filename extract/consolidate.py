"""The final feature file: written aside from parts (and reused rows), then renamed.

`FeatureFileWriter` streams rows into `<file>.tmp` and publishes it complete: a file
under its final name is always whole and self-contained (no virtual datasets, no
parts folder), and `h5py.File(path)["features"]` reads it. `consolidate` merges the
rows reused from an earlier file with the computed parts, in row order.
Only h5py and numpy are imported here.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from extract import featurefile, parts
from extract.plan import Plan, Shard
from extract.writer import TEXT, AtomicH5Writer


class FeatureFileWriter(AtomicH5Writer):
    """Rows in buffered blocks into a new feature file; `finish` marks it complete and
    renames it into place, `abandon` drops it (the final name is never touched)."""

    def __init__(self, path: Path, *, feature_dim: int, label_names: Sequence[str],
                 attrs: dict[str, Any], dtype: str = "float32", buffer_size: int = 1000,
                 compression: str | None = None):
        path = Path(path)
        super().__init__(path, path.with_name(path.name + ".tmp"), feature_dim=feature_dim,
                         dtype=dtype, buffer_size=buffer_size, compression=compression,
                         way_out=(f"{path.name} is as it was; make room, then run the same "
                                  "command again (the finished parts are kept)"))
        with self.writing():
            self._create(feature_dim, label_names, attrs, dtype)

    def _create(self, feature_dim: int, label_names: Sequence[str], attrs: dict[str, Any],
                dtype: str) -> None:
        """The columns beside the features, the label names and the first attributes."""
        rows = max(self.chunk_rows, 1024)
        self.create_column("labels", "int32", chunk_rows=rows)
        self.create_column("paths", TEXT, chunk_rows=rows)
        # (size, mtime_ns) of each row's image: an unchanged image keeps its row.
        self.create_column("file_stats", "int64", width=(2,), chunk_rows=rows)
        self.h5.create_dataset("label_names", data=np.array(list(label_names), dtype=object),
                               dtype=TEXT)
        self.h5.attrs.update({
            "format_version": featurefile.FORMAT_VERSION,
            "feature_dim": feature_dim,
            "dtype": dtype,
            "h5py_version": h5py.__version__,
            "hdf5_version": h5py.version.hdf5_version,
            "numpy_version": np.__version__,
            **attrs,
            "complete": False,
        })

    def add(self, row: np.ndarray, label: int, path: str,
            stat: tuple[int, int] = (-1, -1)) -> None:
        self._buffer((row, label, path, stat))

    def _columns(self, rows: list[tuple[np.ndarray, int, str, tuple[int, int]]]
                 ) -> dict[str, np.ndarray]:
        return {
            "features": np.stack([r for r, _, _, _ in rows]),
            "labels": np.array([label for _, label, _, _ in rows], dtype=np.int32),
            "paths": np.array([p for _, _, p, _ in rows], dtype=object),
            "file_stats": np.array([s for _, _, _, s in rows], dtype=np.int64),
        }

    def finish(self, skipped: Sequence[str] = (), attrs: dict[str, Any] | None = None,
               split: Sequence[str] | None = None) -> None:
        """Write the last block, the skipped images, each row's split (where the data
        came with one) and the closing attributes; publish."""
        self._flush()
        texts = {"skipped": skipped, **({"split": split} if split is not None else {})}
        self._publish(texts, {
            **(attrs or {}),
            "n_written": self.n_rows,
            "n_scanned": self.n_rows + len(skipped),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "complete": True,
        })


@dataclass(frozen=True)
class Reused:
    """Rows copied from an earlier complete file: plan row -> that file's row."""

    path: Path
    rows: dict[int, int]


def reusable_rows(output: Path, the_plan: Plan) -> Reused:
    """Rows of `output` whose image is unchanged (same relative path, size and mtime)."""
    with h5py.File(output, "r") as f:
        if "file_stats" not in f:
            return Reused(output, {})
        old_paths = featurefile.text(f["paths"])
        old_stats = [tuple(s) for s in f["file_stats"][()].tolist()]
    where = {(p, s): row for row, (p, s) in enumerate(zip(old_paths, old_stats))}
    rows = {}
    for i, key in enumerate(zip(the_plan.paths, the_plan.stats)):
        if key in where:
            rows[i] = where[key]
    return Reused(output, rows)


def _check_unchanged(old: h5py.File, reused: Reused, the_plan: Plan) -> None:
    """Refuse rows whose image the earlier file no longer holds there: a file of other
    labels lends its rows without being locked, and another extract may have replaced it
    while this run computed."""
    paths = featurefile.text(old["paths"])
    stats = old["file_stats"][()].tolist()
    for i, row in reused.rows.items():
        if (row >= len(paths) or paths[row] != the_plan.paths[i]
                or tuple(stats[row]) != the_plan.stats[i]):
            raise featurefile.FeatureFileError(
                f"{reused.path}: replaced while this run read its rows; run the same "
                "command again (the finished shards are kept)")


@dataclass(frozen=True)
class Consolidated:
    """What the final file holds: its rows, and the images no shard could read."""

    rows: int
    skipped: list[str]


def consolidate(output: Path, the_plan: Plan, done: list[tuple[Shard, Path]],
                reused: Reused | None, *, feature_dim: int, attrs: dict[str, Any],
                buffer_size: int, compression: str | None) -> Consolidated:
    """Write `output` from the reused rows and the complete parts, in plan order.

    Every part is checked against its digest as it is read; a damaged one stops the
    run before anything is renamed (the caller reruns that shard).
    """
    shard_of = {row: number for number, (shard, _) in enumerate(done) for row in shard.rows}
    skipped: list[str] = []
    split: list[str] | None = None if the_plan.split is None else []
    # One part in memory at a time: shards are increasing slices of the plan's rows.
    current, features, row_in_part = -1, np.empty((0, feature_dim)), {}
    # Chunks of no more rows than the file will hold: a chunk is allocated whole.
    writer = FeatureFileWriter(output, feature_dim=feature_dim,
                               label_names=the_plan.label_names, attrs=attrs,
                               dtype=str(attrs["dtype"]),
                               buffer_size=min(buffer_size, max(1, len(the_plan))),
                               compression=compression)
    try:
        old = h5py.File(reused.path, "r") if reused else None
        try:
            if old is not None:
                _check_unchanged(old, reused, the_plan)
            for start in range(0, len(the_plan), buffer_size):
                block = range(start, min(len(the_plan), start + buffer_size))
                old_rows = [reused.rows[i] for i in block if reused and i in reused.rows]
                # Both files are in row order, so these indices increase (h5py needs that).
                copied = iter(old["features"][old_rows] if old is not None and old_rows
                              else ())
                for i in block:
                    if reused and i in reused.rows:
                        row = next(copied)
                    else:  # every row not reused is in a shard
                        if shard_of[i] != current:
                            current = shard_of[i]
                            shard, path = done[current]
                            features, paths, part_skipped, _ = parts.read(
                                path, key=shard.key)
                            skipped.extend(part_skipped)
                            at = dict(zip(shard.paths, shard.rows))
                            row_in_part = {at[rel]: n for n, rel in enumerate(paths)}
                        if i not in row_in_part:
                            continue  # unreadable: listed in skipped
                        row = features[row_in_part[i]]
                    writer.add(row, the_plan.labels[i], the_plan.paths[i], the_plan.stats[i])
                    if split is not None:
                        split.append(the_plan.split[i])
        finally:
            if old is not None:
                old.close()
        writer.finish(skipped, split=split)
    except BaseException:
        writer.abandon()
        raise
    return Consolidated(writer.n_rows, skipped)


def remove_parts(output: Path) -> None:
    """Delete `output`'s part files and the run's record once the file is complete (the
    lock removes the folder when it is released)."""
    for part in parts.folder(output).glob("*.h5*"):
        part.unlink()
    (parts.folder(output) / parts.RUN_RECORD).unlink(missing_ok=True)
