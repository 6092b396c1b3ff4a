"""`extract` end to end: odd inputs, the file it records, options, one-line errors."""

import os

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from extract import featurefile
from extract.cli import main
from tests.helpers.extracting import extract_small
from tests.helpers.imagefolders import class_image, make_folder


def test_odd_images_become_rgb_and_broken_ones_are_skipped_and_listed(tmp_path):
    root = tmp_path / "data"
    make_folder(root, classes=2, per_class=2)
    colour = class_image(0, 0)
    colour.convert("L").save(root / "class_0" / "gray.jpg")
    colour.convert("RGBA").save(root / "class_0" / "alpha.png")
    colour.convert("P").save(root / "class_1" / "palette.png")
    colour.convert("CMYK").save(root / "class_1" / "cmyk.jpg")
    colour.save(root / "class_1" / "anim.gif", save_all=True,
                append_images=[class_image(1, 1)])
    (root / "class_0" / "empty.jpg").write_bytes(b"")
    (root / "class_0" / "text.jpg").write_text("this is not a JPEG")
    good = (root / "class_1" / "img_000.jpg").read_bytes()
    (root / "class_1" / "truncated.jpg").write_bytes(good[: len(good) // 2])
    result = extract_small(root, tmp_path / "f.h5")
    assert result.exit_code == 0, result.output
    assert "created: 9 rows, 3 skipped" in result.output
    assert "%|" not in result.output  # stderr is no terminal here: no progress bar frames
    for name in ("empty.jpg", "text.jpg", "truncated.jpg"):
        assert f"skipped (unreadable): {root}/class_" in result.output and name in result.output
    got = featurefile.read_features(tmp_path / "f.h5")
    assert sorted(os.path.basename(p) for p in got.skipped) == [
        "empty.jpg", "text.jpg", "truncated.jpg"]
    assert {"class_0/gray.jpg", "class_0/alpha.png", "class_1/palette.png",
            "class_1/cmyk.jpg", "class_1/anim.gif"} <= set(got.paths)


def test_file_records_its_settings_and_versions(tmp_path):
    root = make_folder(tmp_path / "data", classes=2, per_class=2)
    out = tmp_path / "f.h5"
    assert extract_small(root, out, "--dtype", "float16", "--compression", "lzf").exit_code == 0
    attrs = featurefile.read_attrs(out)
    for key in ("format_version", "backbone", "weights", "pooling", "input_size",
                "preprocessing", "feature_dim", "dataset_fingerprint", "n_written",
                "complete", "created", "h5py_version", "tensorflow_version"):
        assert key in attrs, key
    assert attrs["backbone"] == "vgg16" and attrs["pooling"] == "flatten"
    assert attrs["feature_dim"] == 512 and attrs["weights"] == "random"
    with h5py.File(out) as f:
        assert f["features"].dtype == np.float16
        assert f["features"].compression == "lzf"
    assert featurefile.read_features(out).X.shape == (4, 512)


def test_help_lists_backbones_and_options():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for word in ("--dataset", "--backbone", "--pooling", "--weights", "--image-size",
                 "--batch-size", "--buffer-size", "--engine", "--precision", "--output",
                 "--force", "--list", "--shard-size", "resnet50"):
        assert word in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backbone", "alexnet"], "unknown backbone 'alexnet'; choose one of: vgg16"),
        (["--batch-size", "0"], "Invalid value for '--batch-size': must be a positive"),
        (["--batch-size", "-3"], "Invalid value for '--batch-size': must be a positive"),
        (["--pooling", "mean"], "Invalid value for '--pooling'"),
        (["--weights", "/no/such.h5"], "--weights: /no/such.h5 is not 'imagenet', 'random'"),
    ],
)
def test_bad_options_are_one_line_errors(tmp_path, args, message):
    root = make_folder(tmp_path / "data", classes=2, per_class=1)
    result = CliRunner().invoke(main, ["--dataset", str(root), "--weights", "random", *args])
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_missing_folder_and_single_class_are_one_line_errors(tmp_path):
    result = extract_small(tmp_path / "absent", tmp_path / "f.h5")
    assert result.exit_code == 2  # a usage error
    assert f"dataset folder not found: {tmp_path / 'absent'}" in result.output
    make_folder(tmp_path / "one", classes=1, per_class=2)
    result = extract_small(tmp_path / "one", tmp_path / "f.h5")
    assert result.exit_code == 1 and "need at least 2" in result.output
    assert not (tmp_path / "f.h5").exists()


@pytest.mark.parametrize("failure", ["interrupted", "genuine"])
def test_ctrl_c_during_the_openvino_conversion_is_an_interrupt_not_a_traceback(
    tmp_path, monkeypatch, failure
):
    """OpenVINO hands a Ctrl-C back inside a RuntimeError; any other error stays one."""
    import openvino

    message = {"interrupted": "Converting input model\nKeyboardInterrupt: ",
               "genuine": "Converting input model\nunsupported operation Foo"}[failure]

    def convert_model(*args, **kwargs):
        raise RuntimeError(f"Check 'false' failed at src/frontends/frontend.cpp:\n{message}")

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # nothing converted yet
    monkeypatch.setattr(openvino, "convert_model", convert_model)
    root = make_folder(tmp_path / "data", classes=2, per_class=2)
    result = extract_small(root, tmp_path / "f.h5", "--engine", "openvino")
    if failure == "interrupted":
        assert result.exit_code == 130, result.output
        assert result.output.splitlines()[-1] == (
            "interrupted: no shard was finished yet; run the same command again")
        assert "Traceback" not in result.output and "RuntimeError" not in result.output
    else:
        assert isinstance(result.exception, RuntimeError), result.output
        assert "unsupported operation Foo" in str(result.exception)
    assert not (tmp_path / "f.h5").exists()


def test_a_small_dataset_makes_a_small_file(tmp_path):
    root = make_folder(tmp_path / "data", classes=2, per_class=3)
    out = tmp_path / "f.h5"
    assert extract_small(root, out, "--pooling", "avg").exit_code == 0
    rows = featurefile.read_features(out).X
    assert rows.shape[0] == 6
    assert out.stat().st_size < 100_000 + 10 * rows.nbytes  # not a whole 4 MiB chunk
