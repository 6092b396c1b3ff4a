"""`extract --list` narrowed by --dataset, --backbone, --pooling and --image-size, other
options named as ignored; the interrupted runs' parts folders listed with the command that
resumes each; --prune-cache's help naming no folder it may not use (new-user pass 2,
items 8, 13b, 13i)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from extract import extraction
from extract.cli import main
from tests.helpers.featurefiles import write_feature_file
from tests.helpers.synthetic import SyntheticRows, add_images


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The folder extract runs in (its outputs/ go there); converted models elsewhere."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


def _cached(here: Path, dataset: str, backbone: str) -> Path:
    """A complete feature file of `dataset` and `backbone` under a cache name."""
    return write_feature_file(
        here / "outputs" / "features" / f"{dataset}-{backbone}-avg-0000000{len(dataset)}.h5",
        attrs={"dataset": dataset, "dataset_root": str(here / dataset), "backbone": backbone})


def test_list_keeps_the_files_of_the_dataset_and_backbone_given(here):
    _cached(here, "flowers", "vgg16")
    _cached(here, "flowers", "resnet50")
    _cached(here, "cars", "vgg16")
    result = CliRunner().invoke(main, ["--list", "--dataset", "flowers", "--backbone", "vgg16"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == (f"feature files in {here / 'outputs' / 'features'}/ matching --dataset "
                        "flowers --backbone vgg16:")
    assert [line.split()[0] for line in lines[1:] if line.endswith(".h5") or ".h5 " in line] == [
        "flowers-vgg16-avg-00000007.h5"]


def test_list_names_the_options_it_ignores(here):
    _cached(here, "flowers", "vgg16")
    result = CliRunner().invoke(main, ["--list", "--weights", "random", "--batch-size", "8"])
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        ("note: --weights and --batch-size are ignored with --list (it filters by --dataset, "
         "--backbone, --pooling and --image-size)")]
    assert "flowers-vgg16-avg-00000007.h5" in result.stdout


class StopAfterFirstShard(SyntheticRows):
    """Ctrl-C once the first shard's part is written."""

    def run(self, jobs, progress):
        for done in super().run(jobs, progress):
            yield done
            raise KeyboardInterrupt


def test_an_interrupted_run_is_listed_with_the_command_that_resumes_it(here, monkeypatch):
    root = add_images(here / "photos", 0, 4)
    real_run = extraction.run
    distributors = [StopAfterFirstShard(), SyntheticRows()]

    def synthetic(*args: Any, **kwargs: Any) -> extraction.Outcome:
        return real_run(*args, **{**kwargs, "distributor": distributors.pop(0)})

    monkeypatch.setattr(extraction, "run", synthetic)
    typed = ["--dataset", "photos", "--weights", "random", "--image-size", "32",
             "--batch-size", "2", "--shard-size", "4"]
    stopped = CliRunner().invoke(main, typed)
    assert stopped.exit_code == 130, stopped.output

    listing = CliRunner().invoke(main, ["--list"])
    assert listing.exit_code == 0, listing.output
    lines = listing.output.splitlines()
    head = lines.index("unfinished extractions (interrupted, or running now): 1; the command "
                       "under each resumes it, deleting its folder drops it")
    name, shards, _, rows, *_ = lines[head + 1].split()
    assert name.startswith("photos-vgg16-flatten-") and name.endswith(".parts/")
    assert (shards, rows) == ("1", "2")  # 13 images in shards of 2, 4, 4 and 3
    command = lines[head + 2].strip()
    assert command == (f"extract --dataset {root} --weights random --image-size 32 "
                       "--batch-size 2 --shard-size 4")

    resumed = CliRunner().invoke(main, shlex.split(command)[1:])
    assert resumed.exit_code == 0, resumed.output
    assert "resuming: 1 of 4 shards are already in" in resumed.output
    assert "unfinished" not in CliRunner().invoke(main, ["--list"]).output


def test_prune_cache_help_names_no_fixed_folder():
    help_text = " ".join(CliRunner().invoke(main, ["--help"]).output.split())
    assert "~/.cache" not in help_text
    assert ("--prune-cache Remove the models converted for OpenVINO (in the folder extract "
            "--list names; each is converted again when needed), and exit.") in help_text
