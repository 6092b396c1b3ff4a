"""Leakage: copies of one photo on both sides of classify's train/test split.

The split is classify's default: the file's own (a `split` dataset of train, val and
test) where it has one, otherwise the random stratified split for the seed and test
size. A group of near-duplicates leaks when one of its images is tested and another was
trained on (train, or val for the search). `check_run` is what `classify` calls after
its fit, on the rows it already holds, so its warning and report name the groups of
the split it used.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from classify import protocol
from classify.inspection.neighbours import ArrayRows, Pair, groups, near_duplicate_pairs, nearest
from classify.inspection.page import run_report_sections
from extract.featurefile import Features, Float64Note, read_block, read_header

INSPECT_DIR = "inspect"  # outputs/inspect/<features-stem>/: what `inspect` writes
TRAINED = ("train", "val")  # the sides a model learns from, directly or in its search


@dataclass
class FileRows:
    """The rows of a feature file, read block by block (never all at once)."""

    path: Path
    n_rows: int

    def block(self, start: int, stop: int) -> np.ndarray:
        return read_block(self.path, start, stop)


def split_sides(features: Features, test_size: float, seed: int) -> tuple[np.ndarray, str]:
    """Which side of classify's default split each row is on ("" for a row it leaves
    out), and what the split was. Raises protocol.ProtocolError where the labels cannot
    be split (one class)."""
    parts = protocol.choose_rows(features, test_size, seed, protocol.Protocol(), lambda _: None)
    sides = np.full(len(features.y), "", dtype=object)
    sides[parts.train_rows] = "train"
    sides[parts.test_rows] = "test"
    return sides, parts.ran.text


def straddling(linked: Sequence[Sequence[int]], sides: np.ndarray) -> list[list[int]]:
    """The groups with an image on the test side and another on a trained side."""
    return [list(group) for group in linked
            if any(sides[row] == "test" for row in group)
            and any(sides[row] in TRAINED for row in group)]


def lowest_similarity(linked: Sequence[Sequence[int]], pairs: Sequence[Pair]) -> list[float]:
    """Per group, the lowest similarity among the pairs that link it (1.0 for exact
    copies linked by their content alone)."""
    group_of = {row: index for index, group in enumerate(linked) for row in group}
    lowest = [1.0] * len(linked)
    for pair in pairs:
        index = group_of.get(pair.first)
        if index is not None:
            lowest[index] = min(lowest[index], pair.similarity)
    return lowest


@dataclass
class RunLeakage:
    """The near-duplicate groups that straddle a classify run's split, in file rows."""

    groups: list[list[int]] = field(default_factory=list)
    sides: dict[int, str] = field(default_factory=dict)
    similarity: list[float] = field(default_factory=list)

    def test_images(self) -> int:
        return sum(self.sides[row] == "test" for group in self.groups for row in group)

    def warning(self) -> str | None:
        """classify's one line, or None when nothing leaks."""
        if not self.groups:
            return None
        tested = self.test_images()
        return (f"warning: {len(self.groups)} group(s) of near-duplicates straddle the "
                f"train/test split ({tested} test image{'s' * (tested != 1)}): the test score "
                "may be inflated; the report lists them")


def check_run(features: Sequence[Path], split: Any,
              announce: Callable[[str], None]) -> RunLeakage:
    """The leaking groups of a classify run's split, found on the rows the run holds
    (the local backend's training and test parts) or read from its one feature file
    block by block (the cluster backend holds none); the warning goes to `announce`."""
    if hasattr(split, "X_train"):
        source: Any = ArrayRows([split.X_train, split.X_test])
        file_rows = np.concatenate([split.train_rows, split.test_rows])
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Float64Note)  # the run has said so already
            source = FileRows(Path(features[0]), read_header(features[0]).n_rows)
        file_rows = np.arange(source.n_rows)
    if source.n_rows < 2:
        return RunLeakage()
    pairs = [Pair(int(file_rows[p.first]), int(file_rows[p.second]), p.similarity)
             for p in near_duplicate_pairs(nearest(source))]
    sides = np.full(int(file_rows.max()) + 1, "", dtype=object)
    sides[split.train_rows] = "train"
    sides[split.test_rows] = "test"
    leaking = straddling(groups(len(sides), [(p.first, p.second) for p in pairs]), sides)
    ranked = sorted(zip(lowest_similarity(leaking, pairs), leaking), key=lambda item: -item[0])
    found = RunLeakage([group for _, group in ranked],
                       {row: str(sides[row]) for group in leaking for row in group},
                       [similarity for similarity, _ in ranked])
    if line := found.warning():
        announce(line)
    return found


def report_sections(leaks: RunLeakage, fitted: Any, outputs: Path, report_dir: Path
                    ) -> list[str]:
    """The run report's sections on the data: the groups that leak across its split, and
    the map of an earlier `inspect` of its (one) feature file."""
    split, source = fitted.split, fitted.sources[0]
    class_of = {int(row): split.label_names[label]
                for rows, labels in ((split.train_rows, split.y_train),
                                     (split.test_rows, split.y_test))
                for row, label in zip(rows, labels) if int(row) in leaks.sides}
    inspected = (outputs / INSPECT_DIR / Path(source.path).stem
                 if len(fitted.sources) == 1 else None)
    root = Path(source.dataset_root) if source.dataset_root else None
    return run_report_sections(leaks.groups, leaks.sides, leaks.similarity, fitted.paths,
                               class_of, root, inspected, report_dir, source.dataset_fingerprint)
