"""The split, the search and the refit: which rows each step is allowed to see."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.base import BaseEstimator, ClassifierMixin

from classify import models, protocol
from classify.cli import main
from extract.featurefile import read_features
from tests.helpers.featurefiles import write_feature_file


def _labels(counts: list[int]) -> np.ndarray:
    return np.repeat(np.arange(len(counts)), counts)


def test_split_is_stratified() -> None:
    y = _labels([40, 20, 80, 12])
    train, test = protocol.split_rows(y, 0.25, 42)
    assert np.bincount(y[test]).tolist() == [10, 5, 20, 3]
    assert np.bincount(y[train]).tolist() == [30, 15, 60, 9]


def test_split_partitions_the_rows() -> None:
    y = _labels([30, 30, 30])
    train, test = protocol.split_rows(y, 0.25, 42)
    assert len(np.intersect1d(train, test)) == 0
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(len(y)))


def test_same_seed_same_split_and_other_seed_other_split() -> None:
    y = _labels([30, 30, 30])
    first = protocol.split_rows(y, 0.25, 42)
    again = protocol.split_rows(y, 0.25, 42)
    other = protocol.split_rows(y, 0.25, 7)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[1], other[1])


def test_split_depends_only_on_labels_not_on_features(tmp_path: Path) -> None:
    """Two backbones' files of one dataset (same labels, other features) split identically."""
    a = read_features(write_feature_file(tmp_path / "a.h5", dims=8, seed=1))
    b = read_features(write_feature_file(tmp_path / "b.h5", dims=32, seed=2))
    (tmp_path / "scratch_a").mkdir()
    (tmp_path / "scratch_b").mkdir()
    split_a = protocol.split_features(a, 0.25, 42, print, tmp_path / "scratch_a")
    split_b = protocol.split_features(b, 0.25, 42, print, tmp_path / "scratch_b")
    assert np.array_equal(split_a.test_rows, split_b.test_rows)
    assert np.array_equal(split_a.train_rows, split_b.train_rows)


def test_split_features_copies_each_part_once_and_releases_the_full_matrix(
    feature_file: Path, tmp_path: Path
) -> None:
    features = read_features(feature_file)
    X = features.X.copy()
    split = protocol.split_features(features, 0.25, 42, print, tmp_path)
    assert isinstance(split.X_train, np.memmap)  # shared with the search workers, not copied
    assert np.array_equal(split.X_train, X[split.train_rows])
    assert np.array_equal(split.X_test, X[split.test_rows])
    assert split.X_train.dtype == np.float32 and split.X_test.dtype == np.float32
    assert features.X.size == 0


def test_classes_too_small_are_dropped_with_a_warning_naming_them(tmp_path: Path) -> None:
    features = read_features(write_feature_file(tmp_path / "f.h5", counts=[30, 2, 30, 1, 30]))
    messages: list[str] = []
    split = protocol.split_features(features, 0.25, 42, messages.append, tmp_path)
    assert split.label_names == ["class_00", "class_02", "class_04"]
    assert split.dropped == ["class_01 (2)", "class_03 (1)"]
    assert len(messages) == 1 and "class_01 (2), class_03 (1)" in messages[0]
    assert set(split.y_train) == {0, 1, 2}
    assert np.all(np.isin(features.y[split.test_rows], [0, 2, 4]))


def test_cv_is_reduced_to_the_smallest_training_class(tmp_path: Path) -> None:
    features = read_features(write_feature_file(tmp_path / "f.h5", counts=[30, 3, 30]))
    split = protocol.split_features(features, 0.25, 42, print, tmp_path)
    messages: list[str] = []
    smallest = int(np.bincount(split.y_train).min())
    assert smallest == 2
    assert protocol.fold_count(split, 5, messages.append) == 2
    assert messages == ["note: --cv 5 reduced to 2: class 'class_01' has only 2 training images"]
    assert protocol.fold_count(split, 2, messages.append) == 2 and len(messages) == 1


def test_a_test_size_leaving_one_training_image_is_a_clear_error(tmp_path: Path) -> None:
    features = read_features(write_feature_file(tmp_path / "f.h5", counts=[30, 3, 30]))
    split = protocol.split_features(features, 0.6, 42, print, tmp_path)
    with pytest.raises(protocol.ProtocolError, match="class 'class_01' keeps 1 training image"):
        protocol.fold_count(split, 3, print)


class RowSpy(ClassifierMixin, BaseEstimator):
    """Records the row ids (column 0) of every fit and predict; predicts the first class."""

    fitted: ClassVar[list[np.ndarray]] = []
    predicted: ClassVar[list[np.ndarray]] = []

    def __init__(self, alpha: int = 1) -> None:
        self.alpha = alpha

    def fit(self, X: np.ndarray, y: np.ndarray) -> RowSpy:
        RowSpy.fitted.append(X[:, 0].astype(int))
        self.classes_ = np.unique(y)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        RowSpy.predicted.append(X[:, 0].astype(int))
        return np.full(len(X), self.classes_[0])


def test_no_test_row_ever_reaches_the_search(
    outputs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_feature_file(outputs / "features" / "ids-vgg16-avg.h5", row_ids=True)
    spy = models.ModelSpec("spy", "row recorder", lambda seed, n_jobs: RowSpy(), {"alpha": (1, 2)})
    monkeypatch.setitem(models.MODELS, "spy", spy)
    RowSpy.fitted.clear()
    RowSpy.predicted.clear()

    result = CliRunner().invoke(
        main,
        [
            "--features",
            str(path),
            "--model",
            "spy",
            "--grid",
            "alpha",
            "--jobs",
            "1",
            "--outputs",
            str(outputs),
        ],
    )
    assert result.exit_code == 0, result.output

    train, test = protocol.split_rows(read_features(path).y, 0.25, 42)
    *search_fits, refit = RowSpy.fitted
    *search_predictions, final_prediction = RowSpy.predicted
    assert len(search_fits) == 2 * 3  # 2 candidates x 3 folds
    for rows in search_fits + search_predictions:
        assert np.isin(rows, train).all()
        assert not np.isin(rows, test).any()
    assert np.array_equal(np.unique(np.concatenate(search_fits)), train)
    assert np.array_equal(np.sort(refit), train)
    assert np.array_equal(np.sort(final_prediction), test)
