"""Finding 13f of the second new-user pass: under a given split, --train-per-class can
draw only from train+val, so a class left out is counted by what it had there."""

from __future__ import annotations

from pathlib import Path

from classify import protocol
from extract.featurefile import read_header
from tests.helpers.layouts import write_split_file

COUNTS = [12, 12, 9]
SPLIT = (["train"] * 9 + ["test"] * 3) * 2 + ["train"] * 4 + ["val"] * 2 + ["test"] * 3


def test_a_class_dropped_under_a_given_split_is_counted_by_its_train_and_val_images(
        tmp_path: Path) -> None:
    path = write_split_file(tmp_path / "f.h5", SPLIT, COUNTS)
    notes: list[str] = []
    protocol.choose_rows(read_header(path), 0.25, 42, protocol.Protocol(train_per_class=7),
                         notes.append)
    (warning,) = [note for note in notes if note.startswith("warning:")]
    assert warning.endswith("in the given split: class_02 (6 in train+val, 3 in test)"), warning


def test_without_a_given_split_the_whole_class_is_counted(tmp_path: Path) -> None:
    path = write_split_file(tmp_path / "f.h5", SPLIT, COUNTS)
    notes: list[str] = []
    protocol.choose_rows(read_header(path), 0.25, 42,
                         protocol.Protocol(split="random", train_per_class=9), notes.append)
    (warning,) = [note for note in notes if note.startswith("warning:")]
    assert warning.endswith("a test image: class_02 (9)"), warning
