"""--image-size is checked against the backbone's minimum and this machine's memory before
any work: a one-line usage error where the run cannot succeed, a note where a batch is large."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from extract import cli
from extract.cli import main
from tests.helpers.imagefolders import make_folder


@pytest.fixture(autouse=True)
def cache_home(tmp_path, monkeypatch):
    """An empty cache: a refused run must leave no converted model in it."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _extract(tmp_path: Path, *args: str, dataset: Path | None = None):
    root = dataset or make_folder(tmp_path / "data", classes=2, per_class=2)
    out = tmp_path / "out" / "f.h5"
    result = CliRunner().invoke(main, ["--dataset", str(root), "--output", str(out), *args])
    return result, out


def _error_line(output: str) -> str:
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, output
    return errors[0]


@pytest.mark.parametrize(("backbone", "size", "minimum"), [
    ("efficientnet_lite0", 7, 32), ("vgg16", 31, 32), ("xception", 70, 71),
    ("inceptionv3", 74, 75)])
def test_a_size_under_the_backbones_minimum_is_a_usage_error(tmp_path, cache_home, backbone,
                                                             size, minimum):
    result, out = _extract(tmp_path, "--backbone", backbone, "--image-size", str(size))
    assert result.exit_code == 2, result.output
    line = _error_line(result.output)
    assert f"'--image-size': {backbone} needs images of at least {minimum} px, got {size}" in line
    assert not out.parent.exists() and not cache_home.exists()


def test_a_batch_larger_than_memory_is_refused_before_any_work(tmp_path, cache_home):
    result, out = _extract(tmp_path, "--backbone", "efficientnet_lite0",
                           "--image-size", "100000")
    assert result.exit_code == 2, result.output
    line = _error_line(result.output)
    assert "a batch of 32 images at 100000 px takes at least" in line
    assert "more than this machine's" in line and "--batch-size 1, --image-size" in line
    assert "images in" not in result.output  # refused before the folder was scanned
    assert not out.parent.exists() and not cache_home.exists()


def test_a_smaller_batch_size_is_offered_when_one_fits(tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "memory", lambda: 4 * 10**9)
    result, _ = _extract(tmp_path, "--backbone", "vgg16", "--weights", "random",
                         "--batch-size", "512", "--image-size", "224")
    assert result.exit_code == 2, result.output
    line = _error_line(result.output)
    # 224^2 px x (3 + 128) floats x 4 bytes = 26.3 MB an image; a quarter of 4 GB holds 38
    assert "a batch of 512 images at 224 px takes at least 13.5 GB" in line
    assert "more than this machine's 4.0 GB; --batch-size 38 fits (999 MB)" in line


def test_a_large_batch_says_what_it_costs(tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "memory", lambda: 60 * 10**6)
    empty = tmp_path / "empty"  # a folder that exists, so the size is judged before the scan
    empty.mkdir()
    result, _ = _extract(tmp_path, "--backbone", "vgg16", "--weights", "random",
                         "--image-size", "32", dataset=empty)
    notes = [line for line in result.output.splitlines() if line.startswith("note: a batch")]
    # 32 x 32^2 px x (3 + 128) floats x 4 bytes = 17.2 MB, over a quarter of 60 MB
    assert notes == [("note: a batch of 32 images at 32 px takes at least 17 MB (vgg16's input "
                      "and activations) of this machine's 60 MB; a smaller --batch-size takes "
                      "less")], result.output


def test_an_ordinary_batch_gets_no_note(tmp_path):
    result, _ = _extract(tmp_path, "--backbone", "vgg16", dataset=tmp_path / "absent")
    assert "note: a batch" not in result.output
