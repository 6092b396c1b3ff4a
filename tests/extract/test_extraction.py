"""One whole extraction: rows equal the backbone's own output, and the same command
reuses, updates or refuses the file it finds."""

import os

import numpy as np
import pytest
from click.testing import CliRunner

from extract import cache, featurefile
from extract.backbones import registry
from extract.cli import main
from extract.extraction import run
from extract.plan import plan
from extract.scan import scan
from extract.settings import RunOptions, Settings
from tests.helpers.extracting import SIZE, extract_small, reference_features
from tests.helpers.imagefolders import class_image, make_folder


def test_features_in_the_file_equal_the_backbones_own_output(tmp_path):
    root = make_folder(tmp_path / "data", classes=2, per_class=5, ext="png")
    out = tmp_path / "f.h5"
    images = scan(root)
    outcome = run(images, Settings("vgg16", "random", "avg", SIZE), out,
                  options=RunOptions(batch_size=3, buffer_size=4, shard_size=4),
                  log=lambda _: None)
    assert outcome.rows == 10 and outcome.feature_dim == 512 and outcome.action == "created"
    model = registry.build("vgg16", weights="random", pooling="avg", input_size=SIZE)
    got = featurefile.read_features(out)
    rows = plan(images)  # the file's row order
    assert got.paths == rows.paths and got.y.tolist() == rows.labels
    expected = reference_features(model, "vgg16", [str(root / p) for p in rows.paths], SIZE)
    np.testing.assert_allclose(got.X, expected, rtol=1e-4, atol=1e-4)


def test_same_command_twice_reuses_the_file(tmp_path):
    root = make_folder(tmp_path / "data", classes=2, per_class=3)
    out = tmp_path / "f.h5"
    assert extract_small(root, out).exit_code == 0
    content = out.read_bytes()
    second = extract_small(root, out)
    assert second.exit_code == 0
    assert "reusing" in second.output and "reused: 6 rows" in second.output
    assert out.read_bytes() == content
    assert not (tmp_path / "f.parts").exists() and not list(tmp_path.glob("*.lock"))


def _in_cache(tmp_path, monkeypatch, *args):
    """extract with the default output (outputs/features/ under tmp_path)."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["--backbone", "vgg16", "--weights", "random",
                                       "--image-size", str(SIZE), *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_other_folders_and_settings_get_files_of_their_own(tmp_path, monkeypatch):
    a = make_folder(tmp_path / "A" / "train", classes=2, per_class=3)
    b = make_folder(tmp_path / "B" / "train", classes=2, per_class=4)
    _in_cache(tmp_path, monkeypatch, "--dataset", str(a))
    _in_cache(tmp_path, monkeypatch, "--dataset", str(b))
    output = _in_cache(tmp_path, monkeypatch, "--dataset", str(a), "--pooling", "max")
    assert "has this folder and backbone with other settings (pooling flatten vs max)" in output
    found = cache.entries(tmp_path / "outputs" / "features")
    assert len(found) == 3
    assert {(e.attrs["dataset_root"], e.attrs["pooling"], e.rows) for e in found} == {
        (str(a), "flatten", 6), (str(b), "flatten", 8), (str(a), "max", 6)}
    assert all(e.path.name.startswith("train-vgg16-") for e in found)
    listing = CliRunner().invoke(main, ["--list"]).output.splitlines()
    names = {line.split()[0]: index for index, line in enumerate(listing)
             if line.startswith("train-vgg16-")}
    assert len(names) == 3
    for entry in found:
        head = listing[names[entry.path.name]].split()
        assert head[1:3] == [str(entry.rows), "rows"] and head[4] == "MB"
        settings = listing[names[entry.path.name] + 1]
        assert settings.startswith("    vgg16 ") and settings.endswith(
            f"; images in {entry.attrs['dataset_root']}")
    assert any("vgg16 max 32px random float32" in line for line in listing)


@pytest.mark.parametrize("change", ["added", "removed", "rewritten"])
def test_changed_images_update_the_file_computing_only_those(tmp_path, monkeypatch, change):
    root = make_folder(tmp_path / "data", classes=2, per_class=4)
    _in_cache(tmp_path, monkeypatch, "--dataset", str(root))
    (first,) = cache.entries(tmp_path / "outputs" / "features")
    before = featurefile.read_features(first.path)
    if change == "added":
        class_image(0, 9).save(root / "class_0" / "new.jpg")
    elif change == "removed":
        os.remove(root / "class_1" / "img_000.jpg")
    else:
        class_image(1, 7).save(root / "class_0" / "img_000.jpg")
        os.utime(root / "class_0" / "img_000.jpg", ns=(1, 1))  # mtime surely differs
    output = _in_cache(tmp_path, monkeypatch, "--dataset", str(root))
    computed = {"added": 1, "removed": 0, "rewritten": 1}[change]
    reused = {"added": 8, "removed": 7, "rewritten": 7}[change]
    assert f"updated: {reused + computed} rows" in output
    assert f"{computed} computed, {reused} reused" in output
    (after,) = cache.entries(tmp_path / "outputs" / "features")
    assert after.path == first.path  # the same settings: the file was replaced
    got = featurefile.read_features(after.path)
    assert got.attrs["dataset_fingerprint"] == scan(root).fingerprint
    assert got.paths == plan(scan(root)).paths
    old = dict(zip(before.paths, before.X))
    for path, row in zip(got.paths, got.X):
        if path in old and not (change == "rewritten" and path == "class_0/img_000.jpg"):
            np.testing.assert_array_equal(row, old[path])  # copied, not recomputed
    fresh = tmp_path / "fresh.h5"
    assert extract_small(root, fresh).exit_code == 0
    np.testing.assert_allclose(got.X, featurefile.read_features(fresh).X, rtol=1e-5, atol=1e-5)


def test_force_extracts_again_and_other_settings_never_replace_a_file(tmp_path):
    root = make_folder(tmp_path / "data", classes=2, per_class=3)
    out = tmp_path / "f.h5"
    assert extract_small(root, out).exit_code == 0
    again = extract_small(root, out, "--force")
    assert again.exit_code == 0 and "created: 6 rows" in again.output
    other = extract_small(root, out, "--pooling", "max")
    assert other.exit_code == 1
    assert "holds features of other settings (pooling flatten vs max)" in other.output
    assert featurefile.read_attrs(out)["pooling"] == "flatten"


def test_an_unreadable_file_is_left_alone_not_replaced(tmp_path):
    root = make_folder(tmp_path / "data", classes=2, per_class=3)
    out = tmp_path / "f.h5"
    out.write_bytes(b"not HDF5 at all")
    result = extract_small(root, out)
    assert result.exit_code == 1
    assert "not a readable HDF5 feature file" in result.output
    assert "it is left as it is" in result.output
    assert out.read_bytes() == b"not HDF5 at all"
