"""Blocked cosine k-nearest-neighbour search, and near-duplicates read from it.

The similarity matrix is never held whole: one block of query rows meets one block of
reference rows at a time (BLOCK_BYTES of similarities), and only each row's k best
survive, so memory grows with N x k, not N x N. Rows come from a `RowSource`, which
can be an array in memory, a memory-mapped array or a feature file read block by block.

A pair is a near-duplicate when it is far closer than the rows' own neighbourhoods:
its cosine distance is at most RATIO times the distance of each row to its k-th
nearest neighbour (and the similarity is at least FLOOR). A fixed similarity cut-off
pairs distinct photos wherever a class is dense (white daisies on grass), and misses
copies where it is sparse; the ratio adapts to both. Calibrated on flowers17 with
planted copies (README, section "inspect").
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from distributed import Client

NEIGHBOURS = 10  # k: the neighbourhood each row's scale is measured at
RATIO = 0.38  # a pair's distance, at most this fraction of both rows' k-th distance
FLOOR = 0.8  # and at least this cosine similarity
EXACT = 1e-6  # distances below this are equal (k or more identical rows)
BLOCK_BYTES = 64 * 1024 * 1024  # similarities computed at once


class RowSource(Protocol):
    """Feature rows by range: what the search reads."""

    n_rows: int

    def block(self, start: int, stop: int) -> np.ndarray: ...


@dataclass
class ArrayRows:
    """Rows of one or more arrays (in memory or memory-mapped), end to end."""

    parts: Sequence[np.ndarray]

    def __post_init__(self) -> None:
        self.starts = np.cumsum([0, *(len(part) for part in self.parts)])
        self.n_rows = int(self.starts[-1])

    def block(self, start: int, stop: int) -> np.ndarray:
        pieces = []
        for part, first in zip(self.parts, self.starts[:-1]):
            lo, hi = max(start - first, 0), min(stop - first, len(part))
            if lo < hi:
                pieces.append(np.asarray(part[lo:hi], dtype=np.float32))
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)


@dataclass
class Neighbours:
    """Each row's k nearest other rows, nearest first, and their cosine similarities."""

    indices: np.ndarray  # (N, k) int64
    similarities: np.ndarray  # (N, k) float32

    def kth_distance(self) -> np.ndarray:
        """Each row's cosine distance to its k-th nearest neighbour: its neighbourhood's scale."""
        return 1.0 - self.similarities[:, -1].astype(np.float64)


def block_rows(block_bytes: int = BLOCK_BYTES) -> int:
    """Rows per side of a block of similarities that fits `block_bytes`."""
    return max(1, math.isqrt(block_bytes // 4))


def _ranges(n: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n, size):
        yield start, min(n, start + size)


def row_norms(source: RowSource, block_bytes: int = BLOCK_BYTES) -> np.ndarray:
    """Every row's length (one for a row of zeros, which then stays zero), read once."""
    norms = np.concatenate([np.linalg.norm(source.block(start, stop), axis=1)
                            for start, stop in _ranges(source.n_rows, block_rows(block_bytes))])
    return np.where(norms > 0, norms, 1.0).astype(np.float32)


def query_block(source: RowSource, norms: np.ndarray, start: int, stop: int, k: int,
                block_bytes: int = BLOCK_BYTES) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest rows of rows start..stop-1 among all rows of `source` (themselves
    excluded): (indices, similarities), nearest first. `norms`: row_norms(source)."""
    queries = source.block(start, stop) / norms[start:stop, None]
    best_index = np.empty((len(queries), 0), dtype=np.int64)
    best_sim = np.empty((len(queries), 0), dtype=np.float32)
    own = np.arange(start, stop)
    for ref_start, ref_stop in _ranges(source.n_rows, block_rows(block_bytes)):
        sims = queries @ source.block(ref_start, ref_stop).T
        sims /= norms[None, ref_start:ref_stop]
        inside = (own >= ref_start) & (own < ref_stop)
        sims[np.flatnonzero(inside), own[inside] - ref_start] = -np.inf  # never itself
        take = min(k, sims.shape[1])
        part = np.argpartition(-sims, take - 1, axis=1)[:, :take]
        best_index = np.concatenate([best_index, part + ref_start], axis=1)
        best_sim = np.concatenate([best_sim, np.take_along_axis(sims, part, axis=1)], axis=1)
        if best_index.shape[1] > k:
            keep = np.argpartition(-best_sim, k - 1, axis=1)[:, :k]
            best_index = np.take_along_axis(best_index, keep, axis=1)
            best_sim = np.take_along_axis(best_sim, keep, axis=1)
    order = np.argsort(-best_sim, axis=1, kind="stable")
    return np.take_along_axis(best_index, order, axis=1), np.take_along_axis(best_sim, order, 1)


def nearest(source: RowSource, k: int = NEIGHBOURS, client: Client | None = None,
            block_bytes: int = BLOCK_BYTES) -> Neighbours:
    """Every row's k nearest other rows by cosine similarity (k is capped at N - 1).

    With a Dask `client`, the rows go to the workers once and each query block is a task.
    """
    k = max(1, min(k, source.n_rows - 1))
    norms = row_norms(source, block_bytes)
    ranges = list(_ranges(source.n_rows, block_rows(block_bytes)))
    if client is None:
        found = [query_block(source, norms, start, stop, k, block_bytes)
                 for start, stop in ranges]
    else:
        rows, scales = client.scatter([source, norms], broadcast=True)
        found = client.gather([client.submit(query_block, rows, scales, start, stop, k,
                                             block_bytes, pure=False)
                               for start, stop in ranges])
    return Neighbours(np.concatenate([f[0] for f in found]),
                      np.concatenate([f[1] for f in found]))


@dataclass(frozen=True)
class Pair:
    """Two rows (first < second) and their cosine similarity."""

    first: int
    second: int
    similarity: float


def near_duplicate_pairs(neighbours: Neighbours, ratio: float = RATIO,
                         floor: float = FLOOR) -> list[Pair]:
    """The pairs among the neighbour lists that are near-duplicates (module docstring)."""
    scale = neighbours.kth_distance()
    rows = np.repeat(np.arange(len(scale)), neighbours.indices.shape[1])
    others = neighbours.indices.ravel()
    sims = neighbours.similarities.ravel().astype(np.float64)
    limit = ratio * np.minimum(scale[rows], scale[others]) + EXACT
    keep = (sims >= floor) & (1.0 - sims <= limit)
    found: dict[tuple[int, int], float] = {}
    for a, b, s in zip(rows[keep], others[keep], sims[keep]):
        found[(min(a, b), max(a, b))] = float(min(s, 1.0))
    return [Pair(int(a), int(b), s) for (a, b), s in sorted(found.items())]


def groups(n_rows: int, pairs: Sequence[tuple[int, int]]) -> list[list[int]]:
    """Connected groups of rows (two rows or more), each sorted, from linking pairs."""
    parent = np.arange(n_rows)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    for a, b in pairs:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members: dict[int, list[int]] = {}
    for row in sorted({r for pair in pairs for r in pair}):
        members.setdefault(root(row), []).append(row)
    return sorted((rows for rows in members.values() if len(rows) > 1), key=lambda g: g[0])
