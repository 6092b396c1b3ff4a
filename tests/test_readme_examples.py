"""The README's examples run as written: every command line of its fenced code blocks and
every Python block is a row of EXAMPLES, either run here (in a throw-away folder with its
own outputs/, datasets/ and cache) or named with the reason it cannot run here. An example
with no row fails, so a new one cannot go untested silently."""

from __future__ import annotations

import csv
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import dropwhile
from math import prod
from pathlib import Path

import pytest

from classify.models import MODELS
from tests.helpers.featurefiles import write_feature_file
from tests.helpers.imagefolders import class_image, make_folder

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
VENV = Path(sys.executable).parent.parent
# Fenced blocks in these languages hold commands, one a line, when one of their lines
# starts with one of COMMANDS (the others draw a folder layout or an output); ```python
# blocks are run whole; any other language (```text) holds no example.
SHELL = {"", "sh", "bash", "shell", "console"}
COMMANDS = {"make", "extract", "classify", "predict", "inspect", "python", "python3", "pip",
            "dask", "srun", "helm", "optimum-cli"}
# Variables a caller's environment could pass to the Makefile or the commands.
UNSET = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "DATASET", "BACKBONE", "MODEL", "GRID",
         "EXTRACT_ARGS", "CLASSIFY_ARGS", "QUICK")
FLOWERS = "flowers17-efficientnet_lite0-avg-"  # the file the workspace extracts: its name
TIMEOUT = 300


@dataclass(frozen=True)
class Example:
    """A command line (comment dropped, continuation lines joined, spaces collapsed) or a
    whole Python block, and the README line it starts on."""

    text: str
    line: int
    python: bool


def readme_examples(readme: str) -> list[Example]:
    """Every example in the README's fenced code blocks, in order."""
    found = []
    for block in re.finditer(r"^```(\w*)\n(.*?)^```", readme, re.DOTALL | re.MULTILINE):
        language, body = block.group(1), block.group(2)
        first = readme.count("\n", 0, block.start(2)) + 1
        if language == "python":
            found.append(Example(body.strip(), first, python=True))
        elif language in SHELL:
            lines = body.splitlines()
            starts = [first + i for i, line in enumerate(lines)  # of each continued line
                      if i == 0 or not lines[i - 1].endswith("\\")]
            commands = [(start, " ".join(re.sub(r"(^|\s)#(\s.*)?$", "", line).split()))
                        for start, line in zip(starts, body.replace("\\\n", " ").splitlines())]
            if any(_is_command(command) for _, command in commands):
                found += [Example(command, start, python=False)
                          for start, command in commands if command]
    return found


def _is_command(line: str) -> bool:
    """Whether `line` runs one of COMMANDS (after any VAR=value) or a program of .venv."""
    words = list(dropwhile(lambda word: re.fullmatch(r"[A-Z_]+=\S*", word), line.split()))
    return bool(words) and (words[0] in COMMANDS or words[0].startswith(".venv/bin/"))


@dataclass
class Workspace:
    """A folder to run the examples in, as a user runs them from a clone's root: a copy of
    the Makefile, datasets/flowers17/ (3 classes of generated images) with its features
    extracted, photo.jpg and more_photos/ to predict on, and small caltech101 feature
    files (their rows made here: downloading Caltech-101 is extract's job, not classify's)."""

    root: Path
    env: dict[str, str]

    @property
    def cache(self) -> Path:
        return Path(self.env["XDG_CACHE_HOME"])

    @property
    def flowers(self) -> Path:
        (path,) = (self.root / "outputs" / "features").glob(f"{FLOWERS}*.h5")
        return path

    def run(self, argv: list[str], env: dict[str, str] | None = None) -> str:
        """`argv` as the activated environment runs it here; its output, once it exits 0."""
        name = argv[0]
        if name in {"extract", "classify", "predict", "inspect", "python"}:
            argv = [str(VENV / "bin" / name), *argv[1:]]
        elif name.startswith(".venv/bin/"):
            argv = [str(VENV / name.removeprefix(".venv/")), *argv[1:]]
        done = subprocess.run(argv, check=False, cwd=self.root, env={**self.env, **(env or {})},
                              capture_output=True, text=True, timeout=TIMEOUT)
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"{shlex.join(argv)} exited {done.returncode}:\n{output}"
        return output

    def make(self, arguments: list[str]) -> list[list[str]]:
        """The commands `make ARGUMENTS` would run, from a dry run (nothing runs: the
        install step, which would call pip, is taken as done)."""
        dry = subprocess.run(
            ["make", "-s", "-n", "-o", f"{VENV}/.installed", f"VENV={VENV}", *arguments],
            cwd=self.root, env=self.env, capture_output=True, text=True, check=True).stdout
        assert "pip" not in dry, dry
        return [shlex.split(line) for line in dry.replace("\\\n", " ").splitlines()]

    def bundle(self) -> Path:
        """A model trained on the flowers17 file: the newest an example saved, else one
        trained now (for an example run alone)."""
        def made() -> list[Path]:
            models = self.root / "outputs" / "models"
            return sorted(models.glob(f"{FLOWERS}*-logreg-*"), key=lambda p: p.stat().st_mtime)

        if not made():
            self.run(["classify", "--features", str(self.flowers), "--model", "logreg"])
        return made()[-1]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    root = tmp_path_factory.mktemp("readme")
    env = {name: value for name, value in os.environ.items() if name not in UNSET}
    env.update(PATH=f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}",
               XDG_CACHE_HOME=str(root / "cache"))  # --prune-cache empties it
    shutil.copy(REPO / "Makefile", root)
    make_folder(root / "datasets" / "flowers17", classes=3, per_class=8)
    class_image(1, 100).save(root / "photo.jpg")
    (root / "more_photos").mkdir()
    for index in range(2):
        class_image(2, 100 + index).save(root / "more_photos" / f"{index}.jpg")
    features = root / "outputs" / "features"
    features.mkdir(parents=True)
    for name, backbone, pooling in (("caltech101-vgg16-flatten-1a2b3c4d.h5", "vgg16", "flatten"),
                                    ("caltech101-resnet50-avg-5e6f7a8b.h5", "resnet50", "avg")):
        path = write_feature_file(features / name, counts=(6, 6, 6), dims=8, attrs={
            "dataset": "caltech101", "backbone": backbone, "pooling": pooling})
        os.utime(path, (time.time() - 3600,) * 2)  # older: the flowers17 file is the newest
    workspace = Workspace(root, env)
    workspace.run(["extract", "--dataset", "flowers17", "--backbone", "efficientnet_lite0",
                   "--image-size", "64"])
    return workspace


@dataclass(frozen=True)
class CannotRun:
    """Why the example cannot run here (network, a cluster, minutes of work)."""

    reason: str


@dataclass(frozen=True)
class Command:
    """Run the command line in the workspace (a `make` line: the commands make would run).

    `replace`: README placeholders -> what the workspace holds ({bundle} is the name of a
    model trained there); `prepare` readies the workspace and returns environment
    variables for this run; `shows`: text the output must hold; `check` looks further;
    `long`: it takes the better part of a minute (marked `long`: `make test` runs it).
    """

    replace: tuple[tuple[str, str], ...] = ()
    prepare: Callable[[Workspace], dict[str, str]] | None = None
    shows: tuple[str, ...] = ()
    check: Callable[[Workspace, str], None] | None = None
    long: bool = False


@dataclass(frozen=True)
class Python:
    """Run the block as a script in the workspace, after `prelude` (what the README
    leaves to the reader); then the command `then`, if the README gives one after the
    block. `shows`: text the whole output must hold."""

    prelude: str = ""
    then: str = ""
    shows: tuple[str, ...] = ()


Row = CannotRun | Command | Python


def _with_a_run(workspace: Workspace) -> dict[str, str]:
    """At least one run in outputs/results.csv, for an example run alone."""
    workspace.bundle()
    return {}


def _flowers17_just_extracted(workspace: Workspace) -> dict[str, str]:
    """Mark the flowers17 file used, as `make extract` does (`make demo` makes another)."""
    os.utime(workspace.flowers)
    return {}


def _with_a_cache_copy(workspace: Workspace) -> dict[str, str]:
    """A copy of the converted-model cache to prune, so later examples keep the models."""
    copy = workspace.root / "cache-to-prune"
    shutil.copytree(workspace.cache, copy, dirs_exist_ok=True)
    return {"XDG_CACHE_HOME": str(copy)}


def _listed(workspace: Workspace, output: str) -> None:
    assert re.search(rf"^{re.escape(workspace.flowers.name)} +24 rows ", output, re.MULTILINE)
    assert str(workspace.root / "datasets" / "flowers17") in output
    converted = workspace.cache / "offtheshelf" / "openvino"
    for model in converted.iterdir() if converted.is_dir() else ():
        assert model.name in output  # none where a GPU runs TensorFlow instead


def _pruned(workspace: Workspace, output: str) -> None:
    left = workspace.root / "cache-to-prune" / "offtheshelf" / "openvino"
    assert output.startswith("removed "), output
    assert not left.is_dir() or not any(left.iterdir()), list(left.iterdir())


def _predictions_written(workspace: Workspace, output: str) -> None:
    with (workspace.root / "predictions.csv").open(newline="") as table:
        rows = list(csv.DictReader(table))
    assert [row["path"] for row in rows] == ["photo.jpg", "more_photos/0.jpg",
                                            "more_photos/1.jpg"]
    assert all(row["class_3"] and row["confidence"] in {"pretty sure", "somewhat sure", "unsure"}
               for row in rows), rows  # --top 3, and a word for the confidence


XGB_DEFAULT_GRID = prod(len(values) for values in MODELS["xgb"].default_grid.values())
NEEDS_CALTECH = "downloads Caltech-101"
NEEDS_SCHEDULER = "needs a Dask scheduler at tcp://scheduler:8786"
NEEDS_VGG16 = "downloads the ImageNet weights of vgg16"
NEEDS_EXPORT = "needs the model file the recipe below exports, with PyTorch and the network, from"

# Every README example: command lines by their exact text (comment dropped), Python
# blocks by their first line(s).
EXAMPLES: dict[str, Row] = {
    # Quick start
    "make demo": Command(long=True, shows=(
        "datasets/digits: 1,797 images in 10 classes", "with efficientnet_lite0, --weights imagenet",
        "\naccuracy    ", "\nreport      outputs/reports/digits-efficientnet_lite0-avg-")),
    "make test": CannotRun("runs the whole test suite, this test among them"),
    # Usage
    "make extract DATASET=caltech101 BACKBONE=vgg16": CannotRun(
        f"{NEEDS_CALTECH} and the ImageNet weights of vgg16"),
    "make classify MODEL=logreg GRID=C": Command(prepare=_flowers17_just_extracted, shows=(
        f"using the newest complete feature file: outputs/features/{FLOWERS}",
        "\nreport      outputs/reports/")),
    "make classify DATASET=caltech101 BACKBONE=vgg16 MODEL=xgb": Command(shows=(
        f"searching {XGB_DEFAULT_GRID} candidate(s) x 3 folds of xgb",
        "loaded outputs/features/caltech101-vgg16-flatten-1a2b3c4d.h5")),
    "extract --dataset caltech101 --backbone resnet50": CannotRun(
        f"{NEEDS_CALTECH} and the ImageNet weights of resnet50"),
    "extract --dataset path/to/my_photos --backbone vgg16 --pooling avg": CannotRun(NEEDS_VGG16),
    "extract --list": Command(shows=("feature files in ",), check=_listed),
    "extract --prune-cache": Command(prepare=_with_a_cache_copy, check=_pruned),
    "classify --model logreg --grid C": Command(prepare=_flowers17_just_extracted, shows=(
        f"using the newest complete feature file: outputs/features/{FLOWERS}",
        "searching 8 candidate(s) x 3 folds of logreg")),
    "classify --dataset caltech101 --backbone resnet50 --model xgb --grid max_depth=3,6 "
    "--grid n_estimators=100,300": Command(shows=(
        "loaded outputs/features/caltech101-resnet50-avg-5e6f7a8b.h5",
        "searching 4 candidate(s) x 3 folds of xgb")),
    "classify --history": Command(prepare=_with_a_run, shows=(
        "runs in outputs/results.csv, best accuracy first", "outputs/index.html")),
    "inspect --dataset caltech101 --backbone resnet50": Command(shows=(
        "inspected outputs/features/caltech101-resnet50-avg-5e6f7a8b.h5",
        "page     outputs/inspect/caltech101-resnet50-avg-5e6f7a8b/index.html")),
    # From a notebook
    "from pathlib import Path\nfrom classify.config import ExperimentConfig": Python(shows=(
        f"loaded outputs/features/{FLOWERS}", "\naccuracy    ")),
    # predict
    "predict --model outputs/models/<name> photo.jpg more_photos/ [--top 3] "
    "[--output predictions.csv]": Command(
        replace=(("<name>", "{bundle}"), ("[--top 3]", "--top 3"),
                 ("[--output predictions.csv]", "--output predictions.csv")),
        shows=("photo.jpg: class_", "3 images labelled, 0 skipped",
               "predictions written to predictions.csv"),
        check=_predictions_written),
    # Your own images: three layouts
    "extract --dataset photos": CannotRun(f"{NEEDS_VGG16} (the default backbone)"),
    "extract --dataset ds": CannotRun(f"{NEEDS_VGG16} (the default backbone)"),
    "extract --dataset images --labels labels.csv": CannotRun(
        f"{NEEDS_VGG16} (the default backbone)"),
    # Your own backbone: ONNX model files, exported with PyTorch from downloaded weights
    "extract --dataset flowers17 --backbone dinov2-small/model.onnx --preprocess imagenet "
    "--image-size 224": CannotRun(f"{NEEDS_EXPORT} DINOv2 (the optimum-cli recipe)"),
    "optimum-cli export onnx --model facebook/dinov2-small --task feature-extraction "
    "dinov2-small/": CannotRun("downloads DINOv2 from Hugging Face; needs PyTorch and optimum"),
    "extract --dataset flowers17 --backbone dinov2-small/model.onnx --preprocess imagenet "
    "--image-size 224 --model-output last_hidden_state --pooling cls": CannotRun(
        f"{NEEDS_EXPORT} DINOv2 (the optimum-cli recipe)"),
    "from optimum.exporters.onnx import export_models": CannotRun(
        "downloads CLIP from Hugging Face; needs PyTorch, transformers and optimum"),
    "extract --dataset flowers17 --backbone clip-b32/clip_image.onnx --preprocess clip "
    "--image-size 224": CannotRun(f"{NEEDS_EXPORT} CLIP (the optimum recipe)"),
    "import timm, torch": CannotRun("downloads ConvNeXt-Tiny's weights; needs PyTorch and timm"),
    "extract --dataset flowers17 --backbone convnext_tiny.onnx --preprocess imagenet":
        CannotRun(f"{NEEDS_EXPORT} ConvNeXt-Tiny (the timm recipe)"),
    # The feature file: the classic reading, the checked reader, a file of your own
    'import h5py\ndb = h5py.File("outputs/features/caltech101-vgg16-flatten-1a2b3c4d.h5"':
        Python(),
    "from extract.featurefile import read_features": Python(),
    "import h5py, numpy as np\nwith h5py.File(\"mine.h5\", \"w\")": Python(
        prelude="import numpy as np\n"
                "y = np.repeat([0, 1], 12)\n"
                "X = np.random.default_rng(0).normal(size=(24, 8)) + 4 * y[:, None]\n",
        then="classify --features mine.h5 --model logreg --grid C",
        shows=("note: mine.h5: float64 features, read as float32", "\naccuracy    ")),
    # Scaling out (Dask)
    "extract --dataset caltech101 --backbone resnet50 --cluster local:2": CannotRun(
        f"{NEEDS_CALTECH} and the ImageNet weights of resnet50"),
    "extract --dataset caltech101 --backbone resnet50 --cluster local": CannotRun(
        f"{NEEDS_CALTECH} and the ImageNet weights of resnet50"),
    "extract --dataset /shared/imagenet/train --backbone resnet50 "
    "--cluster tcp://scheduler:8786": CannotRun(f"{NEEDS_SCHEDULER} and ImageNet's images"),
    "classify --dataset caltech101 --backbone resnet50 --model xgb --grid max_depth "
    "--cluster tcp://scheduler:8786": CannotRun(NEEDS_SCHEDULER),
    "dask scheduler --port 8786 &": CannotRun("starts a Dask scheduler on a SLURM login node"),
    "srun --ntasks=8 --gres=gpu:1 --cpus-per-task=8 dask worker tcp://$(hostname):8786 "
    "--nworkers 1 --nthreads 1 &": CannotRun("needs SLURM and 8 GPUs"),
    "extract --dataset /shared/imagenet/train --backbone resnet50 "
    "--cluster tcp://$(hostname):8786": CannotRun(
        "needs the SLURM Dask scheduler above and ImageNet's images"),
    "helm install features dask/dask --set worker.replicas=8 --set "
    "worker.image.repository=<your image> --set scheduler.image.repository=<your image>":
        CannotRun("needs a Kubernetes cluster and an image of your own"),
    "extract --dataset /data/imagenet/train --backbone resnet50 "
    "--cluster tcp://features-scheduler:8786": CannotRun(
        "needs the Kubernetes Dask scheduler above and ImageNet's images"),
    # Performance
    "make bench": CannotRun("benchmarks take tens of minutes"),
    "QUICK=1 make bench": CannotRun("benchmarks take minutes, about 7 with QUICK=1"),
    ".venv/bin/python -m bench.extraction": CannotRun("a benchmark: minutes"),
}


def rows_of(example: Example) -> list[str]:
    """The keys of EXAMPLES that name `example`: its text, or for a Python block its start."""
    return [key for key in EXAMPLES
            if key == example.text or (example.python and example.text.startswith(key))]


FOUND = readme_examples(README.read_text(encoding="utf-8"))


def _runnable(example: Example) -> list[object]:
    """The example as a test case, or none when it has no single row or cannot run."""
    keys = rows_of(example)
    row = EXAMPLES[keys[0]] if len(keys) == 1 else CannotRun("no single row")
    if isinstance(row, CannotRun):
        return []
    long = isinstance(row, Command) and row.long
    return [pytest.param(example, marks=[pytest.mark.long] if long else [],
                         id=f"L{example.line}:{example.text[:50]}")]


RUNNABLE = [case for example in FOUND for case in _runnable(example)]


def test_every_readme_example_has_one_row() -> None:
    unclassified = [
        f"README.md:{example.line}: {example.text.splitlines()[0]!r} has "
        f"{len(rows_of(example)) or 'no'} row(s) in EXAMPLES of {Path(__file__).name}: "
        "classify it (how it runs here, or why it cannot)"
        for example in FOUND if len(rows_of(example)) != 1]
    assert not unclassified, "\n".join(unclassified)


def test_every_row_is_a_readme_example() -> None:
    named = {key for example in FOUND for key in rows_of(example)}
    stale = [f"{key.splitlines()[0]!r} is no longer in the README: remove its row"
             for key in EXAMPLES if key not in named]
    assert not stale, "\n".join(stale)


def _substituted(text: str, row: Command, workspace: Workspace) -> str:
    for placeholder, real in row.replace:
        assert placeholder in text, f"{placeholder!r} is not in the example any more"
        if "{bundle}" in real:
            real = real.replace("{bundle}", workspace.bundle().name)
        text = text.replace(placeholder, real)
    return text


@pytest.mark.parametrize("example", RUNNABLE)
def test_readme_example_runs_as_written(example: Example, workspace: Workspace) -> None:
    row = EXAMPLES[rows_of(example)[0]]
    if isinstance(row, Python):
        script = workspace.root / f"readme_line_{example.line}.py"
        script.write_text(row.prelude + example.text + "\n", encoding="utf-8")
        output = workspace.run(["python", script.name])
        if row.then:
            output += workspace.run(shlex.split(row.then))
        shows, check = row.shows, None
    else:
        assert isinstance(row, Command)
        env = row.prepare(workspace) if row.prepare else {}
        argv = shlex.split(_substituted(example.text, row, workspace))
        commands = workspace.make(argv[1:]) if argv[0] == "make" else [argv]
        output = "".join(workspace.run(command, env) for command in commands)
        shows, check = row.shows, row.check
    for text_shown in shows:
        assert text_shown in output, f"{text_shown!r} not in:\n{output}"
    if check is not None:
        check(workspace, output)


def test_examples_are_command_lines_and_whole_python_blocks() -> None:
    """Commands split at line ends (continued lines joined, comments dropped), in blocks
    that run one of COMMANDS; a Python block is one example; drawings are none."""
    found = readme_examples("```\nQUICK=1 make a  # note\nb \\\n  c\n\n```\n"
                            "```python\nx = 1\ny = 2\n```\n```\nphotos/\n  cat/*.jpg\n```\n"
                            "```text\nextract --list\n```\n")
    assert [(e.text, e.line, e.python) for e in found] == [
        ("QUICK=1 make a", 2, False), ("b c", 3, False), ("x = 1\ny = 2", 8, True)]
