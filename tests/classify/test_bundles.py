"""Model bundles: what a saved bundle keeps, and the files `load_bundle` refuses (a
hostile object, an old pickle without --trust, files that are no model)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from classify import protocol
from classify.bundles import load_bundle
from extract.featurefile import read_features
from tests.helpers.bundles import copy_with_metadata, run_predict
from tests.helpers.classifying import only, run
from tests.helpers.imagefolders import class_image


def an_image(folder: Path) -> Path:
    """One readable photo to label: predict checks its images before it loads the model."""
    path = folder / "photo.png"
    class_image(0, 0).save(path)
    return path


def test_bundle_keeps_working_after_the_scratch_copy_is_gone(
    feature_file: Path, outputs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """k-NN keeps its training matrix, which was memory-mapped from the scratch folder."""
    scratch_files: list[Path] = []
    to_memmap = protocol._rows_to_memmap

    def recording(X: np.ndarray, rows: np.ndarray, path: Path) -> np.ndarray:
        scratch_files.append(path)
        return to_memmap(X, rows, path)

    monkeypatch.setattr(protocol, "_rows_to_memmap", recording)
    result = run(outputs, "--features", str(feature_file), "--model", "knn", "--jobs", "1")
    assert result.exit_code == 0, result.output
    assert len(scratch_files) == 1 and not scratch_files[0].parent.exists()
    bundle = load_bundle(only(outputs / "models"))
    features = read_features(feature_file)
    assert (bundle.estimator.predict(features.X) == features.y).mean() > 0.9


def test_a_bundle_holding_a_hostile_object_is_refused(trained, tmp_path):
    """An estimator file whose objects would call os.system on load is never loaded."""
    import skops.io as sio
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    root, model, _ = trained
    hostile = copy_with_metadata(model, tmp_path / "hostile", lambda metadata: None)
    estimator = sio.load(model / "estimator.skops")
    sio.dump(Pipeline([("boom", FunctionTransformer(os.system)), ("model", estimator)]),
             hostile / "estimator.skops")
    result = run_predict("--model", hostile, root)
    assert result.exit_code == 1
    assert "holds types classify never saves (posix.system)" in result.output
    assert "refused" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_an_old_pickled_bundle_loads_only_with_trust(trained, tmp_path):
    """Format-1 bundles (one joblib pickle) need --trust, and say what it means."""
    import joblib
    import skops.io as sio

    root, model, _ = trained
    metadata = json.loads((model / "bundle.json").read_text())
    old = tmp_path / "old.joblib"
    joblib.dump({"format_version": 1, "model": "logreg",
                 "estimator": sio.load(model / "estimator.skops"),
                 "label_names": metadata["label_names"],
                 "extractor": metadata["extractors"][0]}, old)
    refused = run_predict("--model", old, root / "class_0")
    assert refused.exit_code == 1
    assert "an old pickled model" in refused.output and "pass --trust" in refused.output
    trusted = run_predict("--model", old, "--trust", root / "class_0")
    assert trusted.exit_code == 0, trusted.output
    assert "warning: loading" in trusted.output and "with pickle (--trust)" in trusted.output
    assert "8 images labelled, 0 skipped" in trusted.output


@pytest.mark.parametrize(("name", "content"), [
    ("README.md", b"# offtheshelf\n"), ("x.h5", b"\x89HDF\r\n\x1a\n" + bytes(56)),
    ("notes.joblib", b"not a pickle"), ("weights.pkl", b"PK\x03\x04" + bytes(60))])
def test_a_file_that_is_no_pickle_is_not_a_model_and_trust_is_not_suggested(tmp_path, name,
                                                                              content):
    path = tmp_path / name
    path.write_bytes(content)
    for trust in ((), ("--trust",)):
        result = run_predict("--model", path, *trust, an_image(tmp_path))
        assert result.exit_code == 1
        assert result.output == (f"Error: {path}: not a model saved by classify (expected a "
                                 "folder in outputs/models/ holding bundle.json)\n")


@pytest.mark.parametrize("compress", [0, 3, "gzip", "bz2", "xz", "lzma"])
def test_every_kind_of_joblib_file_counts_as_an_old_pickled_model(tmp_path, compress):
    import joblib

    old = tmp_path / "old.pkl"
    joblib.dump({"anything": 1}, old, compress=compress)
    result = run_predict("--model", old, an_image(tmp_path))
    assert result.exit_code == 1
    assert f"{old}: an old pickled model" in result.output and "pass --trust" in result.output


def test_a_file_that_is_no_model_says_so_without_a_stray_number(tmp_path):
    junk = tmp_path / "junk.joblib"
    junk.write_bytes(b"\x80\x05" + b"#" * 62)  # a pickle's first bytes, then junk
    result = run_predict("--model", junk, "--trust", an_image(tmp_path))
    assert result.exit_code == 1
    assert f"{junk}: not a model saved by classify (it cannot be read as one" in result.output
    assert "(35)" not in result.output
