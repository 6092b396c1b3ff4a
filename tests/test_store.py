"""The HDF5 feature file and its writers: round trip, parts and their digests, the cache."""

from pathlib import Path

import h5py
import numpy as np
import pytest

from extract import cache, featurefile, parts
from extract.backbones import registry
from extract.consolidate import FeatureFileWriter


def _write(path: Path, rows: np.ndarray, labels, *, skipped=(), buffer_size=4) -> Path:
    writer = FeatureFileWriter(path, feature_dim=rows.shape[1], label_names=["a", "b"],
                               attrs={"backbone": "test", "weights": "random"},
                               buffer_size=buffer_size)
    for i, (row, label) in enumerate(zip(rows, labels)):
        writer.add(row, int(label), f"{'ab'[label]}/{i}.jpg", (100 + i, 7))
    writer.finish(list(skipped))
    return path


def test_round_trip_keeps_rows_labels_paths_and_attributes(tmp_path):
    rows = np.random.default_rng(0).normal(size=(10, 5)).astype(np.float32)
    labels = np.array([0, 1] * 5)
    path = _write(tmp_path / "f.h5", rows, labels, skipped=["a/bad.jpg"])
    got = featurefile.read_features(path)
    np.testing.assert_array_equal(got.X, rows)
    np.testing.assert_array_equal(got.y, labels)
    assert got.label_names == ["a", "b"]
    assert got.paths[:2] == ["a/0.jpg", "b/1.jpg"]
    assert got.skipped == ["a/bad.jpg"]
    assert got.attrs["complete"] is True
    assert got.attrs["n_written"] == 10 and got.attrs["feature_dim"] == 5
    assert got.attrs["format_version"] == featurefile.FORMAT_VERSION
    with h5py.File(path) as f:  # the classic tutorials' way of reading
        assert f["features"].chunks is not None and not f["features"].is_virtual
        assert f["features"].shape == (10, 5) and f["features"].dtype == np.float32
        assert f["file_stats"][3].tolist() == [103, 7]


def test_nothing_is_under_the_final_name_until_finish(tmp_path):
    path = tmp_path / "f.h5"
    writer = FeatureFileWriter(path, feature_dim=2, label_names=["a", "b"], attrs={},
                               buffer_size=2)
    for i in range(5):
        writer.add(np.ones(2, np.float32), 0, f"a/{i}.jpg")
    assert not path.exists() and writer.tmp.exists()
    writer.abandon()
    assert not path.exists() and not writer.tmp.exists()


def test_partial_file_of_an_older_version_is_refused_with_a_clear_message(tmp_path):
    path = _write(tmp_path / "p.h5", np.ones((5, 2), np.float32), [0, 1, 0, 1, 0])
    with h5py.File(path, "r+") as f:
        f.attrs["complete"] = False
    with pytest.raises(featurefile.FeatureFileError, match="partial extraction .*rerun extract"):
        featurefile.read_features(path)


def _part(tmp_path: Path, dtype: str = "float32") -> parts.PartWriter:
    return parts.PartWriter(tmp_path / "p" / "0-9-abc.h5", feature_dim=3, dtype=dtype,
                            buffer_size=2, attrs={"shard_key": "abc"})


def test_a_part_is_published_whole_and_checked_by_its_digest(tmp_path):
    writer = _part(tmp_path)
    rows = np.arange(15, dtype=np.float32).reshape(5, 3)
    for i, row in enumerate(rows):
        writer.add(row, f"a/{i}.jpg")
    writer.skip("a/bad.jpg")
    assert not writer.path.exists()  # only the .tmp until the shard is done
    writer.finish()
    features, paths, skipped, _ = parts.read(writer.path, key="abc")
    np.testing.assert_array_equal(features, rows)
    assert paths == [f"a/{i}.jpg" for i in range(5)] and skipped == ["a/bad.jpg"]
    assert not parts.is_complete(writer.path, key="another shard")
    with h5py.File(writer.path, "r+") as f:  # one value changed inside the data
        f["features"][2, 1] = 99.0
    with pytest.raises(featurefile.FeatureFileError, match="does not match its sha256"):
        parts.read(writer.path, key="abc")


def test_float16_storage_refuses_values_beyond_its_range_at_write_time(tmp_path):
    writer = _part(tmp_path, "float16")
    writer.add(np.array([1.0, 2.0, 3.0], np.float32), "a/fine.jpg")
    with pytest.raises(parts.Float16RangeError, match=r"--dtype float16: a/big.jpg .*"
                       r"--dtype float32"):
        writer.add(np.array([1.0, 7e4, 3.0], np.float32), "a/big.jpg")
    writer.abandon()
    assert not writer.path.exists() and not writer.tmp.exists()


def test_file_names_carry_a_digest_of_the_identity(tmp_path):
    identity = {key: "x" for key in cache.identity_keys()}
    name = cache.file_name("../A/train", "vgg16", "avg", identity)
    assert name.startswith("train-vgg16-avg-") and len(name) == len("train-vgg16-avg-") + 11
    other = cache.file_name("../B/train", "vgg16", "avg", {**identity, "dataset_root": "B"})
    assert other != name
    assert cache.differences({**identity, "input_size": 64}, identity) == ["input_size 64 vs x"]


def test_how_random_weights_are_drawn_names_their_files_and_no_other(tmp_path):
    """Files of imagenet weights keep the names they had before random_init existed;
    files of random weights get new ones (an older scheme drew another network)."""
    before = {key: "x" for key in cache.identity_keys() if key != "random_init"}
    imagenet = {**before, "weights": "imagenet", "random_init": registry.random_init("imagenet")}
    assert imagenet["random_init"] is None
    assert cache.digest(imagenet) == cache.digest({**imagenet, "random_init": None})
    old_random = {**before, "weights": "random", "random_init": None}
    random = {**old_random, "random_init": registry.random_init("random")}
    assert cache.digest(random) != cache.digest(old_random)
    assert cache.differences(cache.identity_of({**old_random}), random) == [
        f"random_init None vs {registry.RANDOM_INIT}"]


def test_a_part_with_no_readable_image_is_whole(tmp_path):
    writer = _part(tmp_path)
    writer.skip("a/bad.jpg")
    writer.finish()
    features, paths, skipped, _ = parts.read(writer.path, key="abc")
    assert features.shape == (0, 3) and paths == [] and skipped == ["a/bad.jpg"]


def test_two_writers_of_one_shard_never_write_over_each_other(tmp_path):
    """A Dask task left running by an interrupted client and the rerun's task write the
    same shard at once: each into its own temporary file, and the part ends up whole."""
    first, second = _part(tmp_path), _part(tmp_path)
    assert first.tmp != second.tmp and first.path == second.path
    rows = np.arange(6, dtype=np.float32).reshape(2, 3)
    for writer in (first, second):
        for i, row in enumerate(rows):
            writer.add(row, f"a/{i}.jpg")
    first.finish()
    second.finish()
    features, paths, _, _ = parts.read(first.path, key="abc")
    assert paths == ["a/0.jpg", "a/1.jpg"]
    np.testing.assert_array_equal(features, rows)
    assert sorted(p.name for p in first.path.parent.iterdir()) == [first.path.name]
