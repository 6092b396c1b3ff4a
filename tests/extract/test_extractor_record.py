"""The extractor record: a file's attributes in and out, and the views its readers take
(the cache identity and its digest, a bundle's extractor, fused names, a part's runtime)."""

from dataclasses import fields

import h5py
import numpy as np
import pytest

from common.errors import UserError
from extract import cache
from extract.featurefile import Extractor, Role
from extract.settings import Settings

# Attributes as extract writes them (extract.extraction.run and the consolidated file).
WRITTEN = {
    "format_version": 1, "feature_dim": 1280, "dtype": "float16", "h5py_version": "3.11.0",
    "engine": "openvino", "precision": "bfloat16", "device": "Intel Xeon",
    "tensorflow_version": "2.16.1", "dataset_root": "/data/flowers",
    "backbone": "efficientnet_lite0", "weights": "imagenet",
    "preprocessing": "efficientnet_lite", "pooling": "avg", "input_size": 224,
    "dataset": "flowers", "dataset_fingerprint": "abc", "n_images": 10, "complete": True,
}
# The identity of WRITTEN, and its digest as file names have carried it all along.
IDENTITY = {"dataset_root": "/data/flowers", "backbone": "efficientnet_lite0",
            "weights": "imagenet", "preprocessing": "efficientnet_lite", "pooling": "avg",
            "input_size": 224, "dtype": "float16", "engine": "openvino",
            "precision": "bfloat16", "random_init": None, "model_output": None}
DIGEST = "0b84c59128aab52b9f5ae6cc9312eed305ec93304301f2b95f9728e7609b2bb8"
RANDOM = {"dataset_root": "/data/flowers", "backbone": "vgg16", "weights": "random",
          "preprocessing": "caffe", "pooling": "flatten", "input_size": 64,
          "dtype": "float32", "engine": "tensorflow", "precision": "float32",
          "random_init": "glorot-v2"}
RANDOM_DIGEST = "7b8e310269c4439133910d04dfc8b8f300ac547969976f15eca2ba1dd0a1de3d"


def test_file_names_keep_the_digest_they_have_always_had():
    assert cache.digest(IDENTITY) == DIGEST
    assert cache.digest(dict(reversed(IDENTITY.items()))) == DIGEST
    assert cache.digest({k: v for k, v in IDENTITY.items() if v is not None}) == DIGEST
    assert cache.digest(RANDOM) == RANDOM_DIGEST
    assert cache.file_name("flowers/", "efficientnet_lite0", "avg", IDENTITY) == (
        "flowers-efficientnet_lite0-avg-0b84c591.h5")
    assert cache.identity_of(WRITTEN) == IDENTITY
    assert cache.digest(cache.identity_of(WRITTEN)) == DIGEST


def test_the_identity_names_its_settings_in_the_order_differences_are_named():
    assert cache.identity_keys() == (
        "dataset_root", "backbone", "weights", "preprocessing", "pooling", "input_size",
        "dtype", "engine", "precision", "random_init", "model_output")
    assert list(cache.identity_of(WRITTEN)) == list(cache.identity_keys())


def test_attributes_make_a_round_trip_through_the_record():
    record = Extractor.from_attrs(WRITTEN)
    assert record.backbone == "efficientnet_lite0" and record.input_size == 224
    assert record.random_init is None  # not said: not random weights
    attrs = record.to_attrs()
    assert attrs == {key: value for key, value in WRITTEN.items()
                     if key in {f.name for f in fields(Extractor)}}
    assert "dataset_root" not in attrs and "complete" not in attrs
    assert Extractor.from_attrs(attrs) == record


def test_the_record_reads_attributes_as_h5py_gives_them(tmp_path):
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as f:
        f.attrs.update({"backbone": "vgg16", "input_size": np.int64(64),
                        "feature_dim": np.int32(512), "weights": "random"})
        record = Extractor.from_attrs(f.attrs)
    assert record == Extractor(backbone="vgg16", input_size=64, feature_dim=512,
                               weights="random")
    assert type(record.input_size) is int and type(record.feature_dim) is int


def test_files_from_before_engines_ran_on_tensorflow_at_float32():
    old = {k: v for k, v in WRITTEN.items() if k not in ("engine", "precision")}
    record = Extractor.from_attrs(old)
    assert record.engine is None and record.precision is None
    ran = record.with_legacy_defaults()
    assert (ran.engine, ran.precision) == ("tensorflow", "float32")
    assert Extractor.from_attrs({**old, "engine": "openvino"}).with_legacy_defaults().engine == (
        "openvino")
    identity = cache.identity_of(old)
    assert (identity["engine"], identity["precision"]) == ("tensorflow", "float32")
    assert cache.differences(identity, IDENTITY) == [
        "engine tensorflow vs openvino", "precision float32 vs bfloat16"]


def test_a_bundle_keeps_every_setting_predict_needs_as_the_file_says_it():
    bundle = Extractor.from_attrs(WRITTEN).view(Role.BUNDLE)
    assert bundle == {"backbone": "efficientnet_lite0", "weights": "imagenet",
                      "pooling": "avg", "input_size": 224,
                      "preprocessing": "efficientnet_lite", "feature_dim": 1280,
                      "dtype": "float16", "engine": "openvino", "precision": "bfloat16",
                      "random_init": None, "model_output": None, "model_file": None,
                      "format_version": 1}
    # A file written by hand says little; a bundle still has every key (None: unsaid),
    # and an older file's missing engine stays missing, as bundles have always had it.
    mine = Extractor.from_attrs({"format_version": 1, "complete": True}).view(Role.BUNDLE)
    assert mine == dict.fromkeys(bundle, None) | {"format_version": 1}
    assert Extractor.from_attrs(bundle).view(Role.BUNDLE) == bundle  # read back by predict


def test_fused_files_join_the_settings_that_name_an_extractor():
    other = Extractor.from_attrs({**WRITTEN, "backbone": "resnet50", "preprocessing": "caffe",
                                  "feature_dim": 2048})
    joined = Extractor.joined([Extractor.from_attrs(WRITTEN), other])
    assert joined == {"backbone": "efficientnet_lite0+resnet50", "weights": "imagenet+imagenet",
                      "preprocessing": "efficientnet_lite+caffe", "pooling": "avg+avg",
                      "input_size": "224+224", "dtype": "float16+float16"}
    assert Extractor.joined([Extractor(), other])["backbone"] == "None+resnet50"


def test_a_part_lends_the_file_what_its_mapper_reported():
    part = {"engine": "tensorflow", "precision": "float32", "device": "synthetic",
            "feature_dim": 8, "shard_key": "k", "n_rows": 3, "sha256": "s", "complete": True}
    assert Extractor.from_attrs(part).to_attrs(Role.RUNTIME) == {
        "engine": "tensorflow", "precision": "float32", "device": "synthetic",
        "feature_dim": 8}
    assert Extractor.from_attrs(WRITTEN).to_attrs(Role.RUNTIME) == {
        "feature_dim": 1280, "engine": "openvino", "precision": "bfloat16",
        "device": "Intel Xeon", "tensorflow_version": "2.16.1"}


def test_settings_are_rebuilt_from_the_record_by_name():
    record = Extractor.from_attrs(WRITTEN)
    assert Settings.from_extractor(record) == Settings(
        "efficientnet_lite0", "imagenet", "avg", 224, dtype="float16", engine="openvino",
        precision="bfloat16")
    again = Settings.from_extractor(record, weights="/w.h5", engine="tensorflow",
                                    precision="float32")
    assert (again.weights, again.engine, again.precision) == ("/w.h5", "tensorflow", "float32")
    old = {k: v for k, v in WRITTEN.items() if k not in ("engine", "precision", "dtype")}
    legacy = Settings.from_extractor(Extractor.from_attrs(old))
    assert (legacy.engine, legacy.precision, legacy.dtype) == ("tensorflow", "float32", "float32")
    bundle = Extractor.from_attrs(record.view(Role.BUNDLE))  # a bundle.json's extractor
    assert Settings.from_extractor(bundle) == Settings.from_extractor(record)


def test_settings_cannot_be_rebuilt_from_a_record_that_names_no_backbone():
    with pytest.raises(UserError, match="names no backbone, pooling, input_size"):
        Settings.from_extractor(Extractor(weights="imagenet"))
