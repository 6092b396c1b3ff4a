"""A model file's features in the cache: named by the file's stem, identified by its
sha256 with the preprocessing, size, output and pooling; listed; and computed on a
Dask cluster as in one process."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import h5py
import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import numpy_helper

from extract import featurefile
from extract.backbones import model_file
from extract.cli import main
from extract.mapper import build_mapper
from tests.helpers import onnx_models
from tests.helpers.classifying import FAST, assert_one_line_error
from tests.helpers.classifying import run as classify
from tests.helpers.imagefolders import make_folder

OPTIONS = ["--preprocess", "unit", "--image-size", "16"]


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder to run in (outputs/ goes under it) with photos/ and models/conv.onnx."""
    monkeypatch.chdir(tmp_path)
    make_folder(tmp_path / "photos", classes=2, per_class=4)
    (tmp_path / "models").mkdir()
    onnx_models.conv_model(tmp_path / "models" / "conv.onnx")
    return tmp_path


def extract(*args: str) -> str:
    result = CliRunner().invoke(main, ["--dataset", "photos", "--backbone", "models/conv.onnx",
                                       *args])
    assert result.exit_code == 0, result.output
    return result.output


def features(here: Path) -> list[Path]:
    return sorted((here / "outputs" / "features").glob("*.h5"))


def test_the_file_is_named_by_the_stem_and_records_every_setting(here):
    extract(*OPTIONS)
    (path,) = features(here)
    assert path.name.startswith("photos-conv-avg-") and len(path.stem) == len("photos-conv-avg-") + 8
    attrs = featurefile.read_attrs(path)
    sha = hashlib.sha256((here / "models" / "conv.onnx").read_bytes()).hexdigest()
    assert {key: attrs[key] for key in ("backbone", "model_file", "weights", "preprocessing",
                                        "model_output", "pooling", "input_size", "engine",
                                        "feature_dim")} == {
        "backbone": "conv", "model_file": str(here / "models" / "conv.onnx"),
        "weights": f"sha256:{sha}", "preprocessing": "unit", "model_output": "map",
        "pooling": "avg", "input_size": 16, "engine": "openvino", "feature_dim": 4}
    assert "reusing" in extract(*OPTIONS)


@pytest.mark.parametrize("other", [
    ["--preprocess", "imagenet", "--image-size", "16"],
    ["--preprocess", "unit", "--image-size", "24"],
    ["--preprocess", "unit", "--image-size", "16", "--pooling", "max"],
    ["--preprocess", "unit", "--image-size", "16", "--model-output", "tokens", "--pooling", "avg"],
])
def test_another_setting_is_another_file(here, other):
    extract(*OPTIONS)
    extract(*other)
    assert len(features(here)) == 2


def test_other_weights_in_the_same_file_name_are_another_file(here):
    """The identity is the file's content: re-exported weights are new features."""
    extract(*OPTIONS)
    model = here / "models" / "conv.onnx"
    exported = onnx.load(str(model))
    weight = exported.graph.initializer[0]
    weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) * 2, weight.name))
    onnx.save(exported, str(model))
    extract(*OPTIONS)
    first, second = features(here)
    assert first.name[:-12] == second.name[:-12] and first.name != second.name


def test_the_listing_shows_the_file_output_and_scaling(here):
    extract(*OPTIONS)
    listing = CliRunner().invoke(main, ["--list"]).output
    assert (f"{here / 'models' / 'conv.onnx'} output map avg 16px unit sha256:"
            in listing.replace("\n    ", " "))
    backbones = CliRunner().invoke(main, ["--list-backbones"]).output
    assert "any .onnx/.xml file" in backbones


def test_a_file_changed_since_the_settings_were_made_is_refused(here):
    """What a cluster worker finds at the model's path must be the file the run is for."""
    model = here / "models" / "conv.onnx"
    settings = model_file.settings(str(model), preprocess="unit", model_output=None,
                                   pooling=None, image_size=16, weights="imagenet",
                                   engine="auto", precision="float32", dtype="float32")
    onnx_models.conv_model(model, size=16)  # another file at the same path...
    stamp = model.stat().st_mtime_ns + 10**9  # ...and surely a newer time
    os.utime(model, ns=(stamp, stamp))
    with pytest.raises(model_file.ModelFileError,
                       match="its sha256 .* is not the one these features were made with"):
        build_mapper(settings)


def test_shards_on_a_dask_cluster_give_the_rows_of_one_process(here):
    extract(*OPTIONS, "--output", "single.h5")
    extract(*OPTIONS, "--output", "cluster.h5", "--cluster", "local:1", "--shard-size", "3")
    with h5py.File("single.h5") as single, h5py.File("cluster.h5") as cluster:
        np.testing.assert_array_equal(single["features"][()], cluster["features"][()])
        assert cluster.attrs["model_file"] == str(here / "models" / "conv.onnx")


def test_the_model_files_options_are_checked_before_the_images(here):
    # models/ holds no class folder: its scan would fail (a missing folder fails sooner)
    result = CliRunner().invoke(main, ["--dataset", "models", "--backbone",
                                       "models/conv.onnx", "--preprocess", "unit"])
    assert_one_line_error(result, "--image-size N is required")


def test_classify_finds_the_file_by_the_models_stem(here):
    extract(*OPTIONS)
    result = classify(here / "outputs", "--dataset", "photos", "--backbone", "conv", "--model",
                      "logreg", *FAST, "--cv", "2")
    assert result.exit_code == 0, result.output
    assert f"features    {features(here)[0]}" in result.output
