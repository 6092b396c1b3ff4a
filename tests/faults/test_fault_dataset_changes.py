"""The dataset changes between runs: images added, removed, or rewritten in place.

The rerun updates the file incrementally (only new and changed images go through the
model; the unreadable one is tried again, as it is never a row), ends with exactly what
a clean run on the new folder writes, and the old file stays whole and readable under
its name until the new one replaces it. The images are uncompressed PNGs so that a
rewritten image keeps its size: only its mtime gives the change away.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from extract import featurefile, parts, writer
from tests.helpers.faultkit import (
    UPDATE_ATTRS,
    assert_same_file,
    contents,
    differences,
    extract_args,
    extract_here,
    rows_lost,
    save_uncompressed_png,
)
from tests.helpers.imagefolders import class_image

# change -> images the update computes (the unreadable one included), rows it reuses
CHANGES = {"added": (2, 18), "removed": (1, 17), "rewritten": (2, 17)}


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 classes x 6 PNGs and one unreadable file: 18 rows, 1 skipped."""
    root = tmp_path_factory.mktemp("changes") / "data"
    for label in range(3):
        (root / f"class_{label}").mkdir(parents=True)
        for index in range(6):
            save_uncompressed_png(class_image(label, index),
                                  root / f"class_{label}" / f"img_{index}.png")
    (root / "class_1" / "broken.png").write_bytes(b"\x89PNG not really")
    return root


def _change(root: Path, change: str) -> None:
    if change == "added":
        save_uncompressed_png(class_image(2, 9), root / "class_0" / "img_0a.png")
    elif change == "removed":
        os.remove(root / "class_0" / "img_1.png")
    else:  # rewritten: same name, same size, other pixels, a later mtime
        target = root / "class_0" / "img_2.png"
        size, mtime = target.stat().st_size, target.stat().st_mtime_ns
        save_uncompressed_png(class_image(1, 7), target)
        os.utime(target, ns=(mtime + 10**9, mtime + 10**9))
        assert target.stat().st_size == size


@pytest.mark.parametrize("change", CHANGES)
def test_changed_folder_updates_the_file(change: str, source: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch, ledger) -> None:
    root = tmp_path / "data"
    shutil.copytree(source, root)  # copy2: sizes and mtimes kept
    out = tmp_path / "features.h5"
    args = extract_args(root, out)
    assert extract_here(args).exit_code == 0
    old = contents(out)

    _change(root, change)
    # At the moment the new file is renamed over it, the old one is still whole.
    publish, seen = writer.publish, []

    def checked_publish(tmp: Path, final: Path) -> None:
        if final == out:
            seen.append(not differences(contents(out), old))
            featurefile.read_features(out)
        publish(tmp, final)

    monkeypatch.setattr(writer, "publish", checked_publish)
    rerun = extract_here(args)
    monkeypatch.undo()
    clean = tmp_path / "clean.h5"
    assert extract_here(extract_args(root, clean)).exit_code == 0
    lost = rows_lost(contents(out), contents(clean)) if rerun.exit_code == 0 else 18
    ledger.record(f"dataset {change} between runs", recovered=rerun.exit_code == 0 and lost == 0,
                  rows_lost=lost)
    assert rerun.exit_code == 0, rerun.output
    computed, reused = CHANGES[change]
    assert f"the images changed; {reused} rows are reused" in rerun.output
    assert f"; {computed} computed, {reused} reused;" in rerun.output
    assert "updated: " in rerun.output
    assert seen == [True]
    assert_same_file(out, clean, may_differ=UPDATE_ATTRS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clean.h5", "data", "features.h5"]


def test_interrupted_update_keeps_the_old_file(source: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               ledger) -> None:
    """Ctrl-C part-way through an update: the old file is as it was and still reused by
    classify; the rerun finishes the update from the parts already done."""
    root = tmp_path / "data"
    shutil.copytree(source, root)
    out = tmp_path / "features.h5"
    args = extract_args(root, out)
    assert extract_here(args).exit_code == 0
    old = contents(out)
    for index in range(10):  # enough new images for two shards
        save_uncompressed_png(class_image(2, 20 + index), root / "class_2" / f"new_{index}.png")

    finish, finished = parts.PartWriter.finish, []

    def finish_then_stop(self: parts.PartWriter) -> None:
        if finished:
            raise KeyboardInterrupt
        finish(self)
        finished.append(self.path)

    monkeypatch.setattr(parts.PartWriter, "finish", finish_then_stop)
    stopped = extract_here(args)
    monkeypatch.undo()
    assert stopped.exit_code == 130, stopped.output
    assert f"{out} is as it was; 1 finished shard(s) are kept" in stopped.output
    assert differences(contents(out), old) == []
    assert featurefile.read_features(out).X.shape == (18, 512)

    rerun = extract_here(args)
    clean = tmp_path / "clean.h5"
    assert extract_here(extract_args(root, clean)).exit_code == 0
    lost = rows_lost(contents(out), contents(clean)) if rerun.exit_code == 0 else 28
    ledger.record("Ctrl-C during an update", recovered=rerun.exit_code == 0 and lost == 0,
                  rows_lost=lost)
    assert rerun.exit_code == 0, rerun.output
    assert "resuming: 1 of 2 shards" in rerun.output
    assert "resumed: 28 rows" in rerun.output
    assert_same_file(out, clean, may_differ=UPDATE_ATTRS)
