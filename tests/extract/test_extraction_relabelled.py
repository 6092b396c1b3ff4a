"""A label file edited, or another one, over the same images: the rows depend only on the
images and the extractor, so the new file reuses an earlier file's rows, and one short
note names the label files (new-user pass 2, item 6)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from extract import extraction, parts
from extract.featurefile import FeatureFileError, read_features
from extract.labels import scan_labelled
from extract.plan import plan
from tests.helpers.synthetic import SETTINGS, SyntheticRows


def _images(root: Path) -> Path:
    """Six images in one flat folder (their bytes are never decoded here)."""
    root.mkdir(parents=True)
    for index in range(6):
        (root / f"img_{index}.jpg").write_bytes(f"image {index}".encode())
    return root


def _labels(file: Path, first: str) -> Path:
    """img_0's label is `first`; the others alternate a, b."""
    rows = [f"img_{index}.jpg,{first if index == 0 else 'ab'[index % 2]}" for index in range(6)]
    file.write_text("path,label\n" + "\n".join(rows) + "\n")
    return file


def _extract(root: Path, labels: Path, features: Path, said: list[str],
             computing: SyntheticRows) -> extraction.Outcome:
    """extract --labels into the cache's own name, as the command does."""
    images = scan_labelled(root, labels)
    output = extraction.default_output(features, "flat", SETTINGS, plan(images))
    return extraction.run(images, SETTINGS, output, dataset_name="flat",
                           distributor=computing, log=said.append, progress=False)


def test_an_edited_label_file_reuses_every_row_and_says_so_once(tmp_path):
    root, features = _images(tmp_path / "flat"), tmp_path / "features"
    labels = _labels(tmp_path / "labels.csv", "a")
    first = _extract(root, labels, features, [], SyntheticRows())
    _labels(labels, "b")  # edited in place
    said: list[str] = []
    computing = SyntheticRows()
    second = _extract(root, labels, features, said, computing)
    assert said == [
        (f"note: {first.path.name} has this folder with these settings, labelled from an "
         "earlier version of labels.csv (this run: labels.csv); it is kept, and a new file "
         "is made"),
        (f"{second.path}: 6 rows are reused from {first.path.name}, 0 images go through "
         "the model")]
    assert computing.computed == []
    assert (second.action, second.computed, second.reused_rows) == ("created", 0, 6)
    assert "; 0 computed, 6 reused; " in second.summary()
    old, new = read_features(first.path), read_features(second.path)
    assert (new.X == old.X).all() and new.paths == old.paths
    relabelled = new.paths.index("img_0.jpg")
    assert new.label_names[new.y[relabelled]] == "b"
    assert old.label_names[old.y[relabelled]] == "a"


def test_two_earlier_label_files_give_one_note_naming_the_files(tmp_path):
    root, features = _images(tmp_path / "flat"), tmp_path / "features"
    _extract(root, _labels(tmp_path / "labels.csv", "a"), features, [], SyntheticRows())
    latest = _extract(root, _labels(tmp_path / "fixed.csv", "b"), features, [], SyntheticRows())
    (root / "img_5.jpg").write_bytes(b"image 5, retouched")  # one image changed as well
    said: list[str] = []
    computing = SyntheticRows()
    third = _extract(root, _labels(tmp_path / "third.csv", "c"), features, said, computing)
    assert said == [
        (f"note: {latest.path.name} has this folder with these settings, labelled from "
         "fixed.csv (this run: third.csv); it and 1 more file labelled otherwise are kept, "
         "and a new file is made"),
        (f"{third.path}: 5 rows are reused from {latest.path.name}, 1 images go through "
         "the model")]
    assert computing.computed == [["img_5.jpg"]]
    assert (third.computed, third.reused_rows) == (1, 5)


class ReplacingTheLender(SyntheticRows):
    """Computes the shards after another extract has replaced the file lending rows."""

    def __init__(self, replace: Callable[[], object]) -> None:
        super().__init__()
        self.replace = replace

    def run(self, jobs, progress):
        self.replace()
        yield from super().run(jobs, progress)


def test_a_lending_file_replaced_meanwhile_stops_the_run_keeping_the_shards(tmp_path):
    root, features = _images(tmp_path / "flat"), tmp_path / "features"
    labels = _labels(tmp_path / "labels.csv", "a")
    _extract(root, labels, features, [], SyntheticRows())
    (root / "img_5.jpg").write_bytes(b"image 5, retouched")
    other = _labels(tmp_path / "other.csv", "b")

    def replace() -> None:  # the lender updated: img_0 changed again after it lent its row
        (root / "img_0.jpg").write_bytes(b"image 0, retouched")
        _extract(root, labels, features, [], SyntheticRows())

    with pytest.raises(FeatureFileError, match="replaced while this run read its rows; run "
                                               "the same command again"):
        _extract(root, other, features, [], ReplacingTheLender(replace))
    images = scan_labelled(root, other)
    output = extraction.default_output(features, "flat", SETTINGS, plan(images))
    assert not output.exists()
    assert len(list(parts.folder(output).glob("*.h5"))) == 1  # img_5's shard, kept
