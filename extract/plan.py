"""The plan of an extraction: every image in row order, and the shards that compute them.

Rows are stored in a seeded random order, as the classic `extract_features.py` shuffles
its image paths: a script that splits a file by index (train on the first 75%, test on
the rest) then sees every class on both sides. The order is a hash of each relative
path with a fixed seed, so it depends only on which images there are: every backbone
gets the same order over the same images (classify's split and fusion line up), and an
added image slots in without moving the others (incremental updates copy rows in order).

A shard is a contiguous slice of the images still to compute, cut at batch boundaries;
it is the unit of work, of retry and of output (one part file each).
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from pathlib import Path

from extract.scan import LabelFile, Scan

ROW_ORDER_SEED = 42
ROW_ORDER = f"sha256('{ROW_ORDER_SEED}/' + path), ascending"


@dataclass(frozen=True)
class Plan:
    """The images of a scan in row order, with what identifies each one."""

    root: Path
    paths: list[str]
    labels: list[int]
    label_names: list[str]
    stats: list[tuple[int, int]]  # (size, mtime_ns)
    fingerprint: str
    split: list[str] | None = None  # train, val or test per row, where a split was given
    split_source: str | None = None  # "folders", or the label file that gave the split
    label_file: LabelFile | None = None  # where a label file gave the labels

    def __len__(self) -> int:
        return len(self.paths)


def order_key(path: str) -> str:
    return hashlib.sha256(f"{ROW_ORDER_SEED}/{path}".encode()).hexdigest()


def plan(scan: Scan) -> Plan:
    """The scan's images in row order (see the module docstring)."""
    order = sorted(range(len(scan)), key=lambda i: order_key(scan.paths[i]))
    return Plan(scan.root.resolve(), [scan.paths[i] for i in order],
                [scan.labels[i] for i in order], scan.label_names,
                [scan.stats[i] for i in order], scan.fingerprint,
                None if scan.split is None else [scan.split[i] for i in order],
                scan.split_source, scan.label_file)


@dataclass(frozen=True)
class Shard:
    """Images to compute, with their place in the plan; `key` names its part file."""

    root: Path
    rows: list[int]  # indices into the plan, increasing
    paths: list[str]
    stats: list[tuple[int, int]]
    key: str

    @property
    def name(self) -> str:
        """The part file's name: the slice and a digest of everything that shapes it."""
        return f"{self.rows[0]:09d}-{self.rows[-1]:09d}-{self.key[:12]}.h5"

    def files(self) -> list[str]:
        return [str(self.root / p) for p in self.paths]


def shard_sizes(n_images: int, batch_size: int, shard_size: int) -> list[tuple[int, int]]:
    """Contiguous [start, stop) slices of about `shard_size` images, cut between batches.

    They depend only on these three numbers, so a rerun finds the same part files.
    """
    if n_images == 0:
        return []
    batches = -(-n_images // batch_size)
    n_shards = min(batches, max(1, -(-n_images // shard_size)))
    bounds = [min(n_images, i * batches // n_shards * batch_size) for i in range(n_shards + 1)]
    return list(itertools.pairwise(bounds))


def shards(the_plan: Plan, todo: list[int], *, identity: str, batch_size: int,
           shard_size: int) -> list[Shard]:
    """The shards computing the plan's rows `todo` (increasing), for settings `identity`."""
    out = []
    for start, stop in shard_sizes(len(todo), batch_size, shard_size):
        rows = todo[start:stop]
        paths = [the_plan.paths[i] for i in rows]
        stats = [the_plan.stats[i] for i in rows]
        digest = hashlib.sha256(f"{identity}\n{batch_size}\n".encode())
        for path, (size, mtime_ns) in zip(paths, stats):
            digest.update(f"{path}\0{size}\0{mtime_ns}\n".encode())
        out.append(Shard(the_plan.root, rows, paths, stats, digest.hexdigest()))
    return out
