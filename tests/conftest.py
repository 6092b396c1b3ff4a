"""Shared fixtures: a throw-away outputs/ tree with a small complete feature file in it."""

from __future__ import annotations

from pathlib import Path

import pytest
from featurefiles import write_feature_file


@pytest.fixture
def outputs(tmp_path: Path) -> Path:
    """An empty outputs/ root for one test (features/, reports/, models/ go under it)."""
    root = tmp_path / "outputs"
    (root / "features").mkdir(parents=True)
    return root


@pytest.fixture
def feature_file(outputs: Path) -> Path:
    """4 separable classes x 30 rows x 16 dims, complete, named as extract would."""
    return write_feature_file(outputs / "features" / "toy-vgg16-avg.h5")
