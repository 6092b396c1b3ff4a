"""Part files: published whole, checked by their digest, and one per shard however many
writers write it."""

from pathlib import Path

import h5py
import numpy as np
import pytest

from extract import featurefile, parts


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
