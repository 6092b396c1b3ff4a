"""Shared fixtures: a throw-away outputs/ tree with a small complete feature file in it."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from featurefiles import write_feature_file

# A test run started in the background of a non-interactive shell (`make test &`)
# inherits SIGINT ignored, and so would every command it starts: the Ctrl-C tests would
# see their signal dropped. A handler here makes the children start with the default.
signal.signal(signal.SIGINT, signal.default_int_handler)


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
