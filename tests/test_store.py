"""The HDF5 feature file: round trip, block-wise durability, partial files, the lock."""

import h5py
import numpy as np
import pytest

from extract import store


def _write(path, rows, labels, buffer_size=4, finish=True):
    writer = store.FeatureWriter.create(
        path, feature_dim=rows.shape[1], label_names=["a", "b"],
        attrs={"backbone": "test", "weights": "random"}, buffer_size=buffer_size,
    )
    for i, (row, label) in enumerate(zip(rows, labels)):
        writer.add(row, int(label), f"{'ab'[label]}/{i}.jpg")
    if finish:
        writer.finish()
    return writer


def test_round_trip_keeps_rows_labels_paths_and_attributes(tmp_path):
    rows = np.random.default_rng(0).normal(size=(10, 5)).astype(np.float32)
    labels = np.array([0, 1] * 5)
    path = tmp_path / "f.h5"
    writer = _write(path, rows, labels)
    writer.close()  # a second close is harmless
    got = store.read_features(path)
    np.testing.assert_array_equal(got.X, rows)
    np.testing.assert_array_equal(got.y, labels)
    assert got.label_names == ["a", "b"]
    assert got.paths[:2] == ["a/0.jpg", "b/1.jpg"]
    assert got.attrs["complete"] is True
    assert got.attrs["n_written"] == 10 and got.attrs["feature_dim"] == 5
    assert got.attrs["format_version"] == store.FORMAT_VERSION
    with h5py.File(path) as f:
        assert f["features"].chunks is not None
        assert f["features"].dtype == np.float32


def test_n_written_moves_only_in_whole_blocks(tmp_path):
    rows = np.ones((7, 3), dtype=np.float32)
    path = tmp_path / "f.h5"
    writer = store.FeatureWriter.create(path, feature_dim=3, label_names=["a", "b"],
                                        attrs={}, buffer_size=3)
    for i in range(7):
        writer.add(rows[i], 0, f"a/{i}.jpg")
        assert writer.n_written == (i + 1) // 3 * 3
    writer.close()  # closing flushes the last partial block, never marks complete
    attrs = store.read_attrs(path)
    assert attrs["n_written"] == 7 and attrs["complete"] is False


def test_partial_file_is_refused_with_a_clear_message(tmp_path):
    path = tmp_path / "p.h5"
    _write(path, np.ones((5, 2), np.float32), [0, 1, 0, 1, 0], finish=False).close()
    with pytest.raises(store.FeatureFileError, match="partial extraction .*rerun extract"):
        store.read_features(path)


def test_resume_drops_rows_past_n_written(tmp_path):
    path = tmp_path / "r.h5"
    _write(path, np.ones((4, 2), np.float32), [0, 1, 0, 1], finish=False).close()
    with h5py.File(path, "r+") as f:  # a block that was cut short: rows without n_written
        f["features"].resize(6, axis=0)
        f["labels"].resize(6, axis=0)
        f["paths"].resize(6, axis=0)
    writer = store.FeatureWriter.resume(path)
    writer.add(np.full(2, 7, np.float32), 1, "b/x.jpg")
    writer.finish()
    got = store.read_features(path)
    assert got.X.shape == (5, 2) and got.paths[-1] == "b/x.jpg"
    np.testing.assert_array_equal(got.X[-1], [7, 7])


def test_second_writer_on_the_same_file_is_refused(tmp_path):
    path = tmp_path / "l.h5"
    first = _write(path, np.ones((1, 2), np.float32), [0], finish=False)
    with pytest.raises(store.OutputLockedError, match="another extract is writing"):
        store.FeatureWriter.resume(path)
    first.close()
    store.FeatureWriter.resume(path).close()


def test_skipped_images_are_listed_in_the_file(tmp_path):
    path = tmp_path / "s.h5"
    writer = store.FeatureWriter.create(path, feature_dim=2, label_names=["a", "b"], attrs={})
    writer.add(np.zeros(2, np.float32), 0, "a/1.jpg")
    writer.skip("a/bad.jpg")
    writer.finish()
    assert store.read_skipped(path) == ["a/bad.jpg"]
    assert store.read_attrs(path)["n_scanned"] == 2
