"""The HDF5 feature file: what the reader gives back of what was written, and the
refusals."""

from pathlib import Path

import h5py
import numpy as np
import pytest

from extract import featurefile
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


def test_partial_file_of_an_older_version_is_refused_with_a_clear_message(tmp_path):
    path = _write(tmp_path / "p.h5", np.ones((5, 2), np.float32), [0, 1, 0, 1, 0])
    with h5py.File(path, "r+") as f:
        f.attrs["complete"] = False
    with pytest.raises(featurefile.FeatureFileError, match="partial extraction .*rerun extract"):
        featurefile.read_features(path)


