"""The models converted for OpenVINO are listed with their sizes and can be pruned:
`extract --list`, `extract --prune-cache` and `make clean-cache`."""

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from extract import cache
from extract import mapper as engines
from extract.cli import main
from extract.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def converted(tmp_path, monkeypatch) -> Path:
    """A cache with two converted models (3 MB and 1 MB), a staging folder a killed
    conversion left an hour ago and one a conversion is writing now."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)  # outputs/features/ of this test: none
    folder = cache.converted_models_folder()
    for name, megabytes in (("vgg16-flatten-224-0123456789abcdef", 3),
                            ("efficientnet_lite0-avg-64-fedcba9876543210", 1)):
        (folder / name).mkdir(parents=True)
        (folder / name / "model.bin").write_bytes(b"\0" * megabytes * 10**6)
        (folder / name / "model.xml").write_text("<net/>")
    left = folder / ".vgg16-avg-32-0000000000000000-killed"
    left.mkdir()
    (left / "model.bin").write_bytes(b"\0" * 10**6)
    os.utime(left, (time.time() - 2 * cache.STALE_STAGING_S,) * 2)
    (folder / ".vgg16-avg-48-1111111111111111-writing").mkdir()
    return folder


def test_converted_models_go_to_the_listed_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    where = engines.converted_model_dir(Settings("vgg16", "random", "avg", 32))
    expected = tmp_path / "cache" / "offtheshelf" / "openvino"
    assert where.parent == cache.converted_models_folder() == expected


def test_list_shows_each_converted_model_with_its_size(converted):
    result = CliRunner().invoke(main, ["--list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("models converted"))
    assert lines[head] == (f"models converted for OpenVINO in {converted}/: 2, 4.0 MB; "
                           "extract --prune-cache removes them")
    listed = {line.split()[0]: line.split()[1:3] for line in lines[head + 1:]}
    assert listed == {"vgg16-flatten-224-0123456789abcdef": ["3.0", "MB"],
                      "efficientnet_lite0-avg-64-fedcba9876543210": ["1.0", "MB"]}


def test_prune_cache_removes_the_converted_models(converted):
    result = CliRunner().invoke(main, ["--prune-cache"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        (f"removed 2 converted model(s), 5.0 MB, from {converted}/; each is converted again "
         "when an extraction needs it")]
    # a conversion under way keeps its staging folder
    assert sorted(p.name for p in converted.iterdir()) == [
        ".vgg16-avg-48-1111111111111111-writing"]
    assert CliRunner().invoke(main, ["--list"]).output.splitlines()[-1] == (
        f"models converted for OpenVINO in {converted}/: 0, 0.0 MB")


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
def test_make_clean_cache_removes_them(converted):
    env = {**os.environ, "XDG_CACHE_HOME": str(converted.parent.parent)}
    done = subprocess.run(["make", "--no-print-directory", "clean-cache"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert f"removing the converted OpenVINO models in {converted}/" in done.stdout
    assert not converted.exists() and converted.parent.is_dir()
