"""Shared fixtures: a throw-away outputs/ tree with a small complete feature file in it,
and a model bundle trained here."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.helpers.bundles import train_bundle
from tests.helpers.featurefiles import write_feature_file

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


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """Class folders -> extract (random weights) -> classify logreg -> a model bundle:
    the image folder, the bundle and the folder holding both."""
    return train_bundle(tmp_path_factory.mktemp("predict"))
