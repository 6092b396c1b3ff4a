"""A fused run is named by every file it read, everywhere a user meets it (issue 26, item 3)."""

from __future__ import annotations

import re
from pathlib import Path

from PIL import Image

from tests.helpers.classifying import run
from tests.helpers.featurefiles import write_feature_file


def _pair(outputs: Path) -> tuple[Path, Path]:
    """Two feature files of the same images, from two backbones."""
    folder = outputs / "features"
    return (write_feature_file(folder / "toy-vgg16-avg.h5"),
            write_feature_file(folder / "toy-resnet50-avg.h5", seed=1,
                               attrs={"backbone": "resnet50"}))


def test_a_fused_run_names_both_files_and_says_fused(outputs: Path) -> None:
    a, b = _pair(outputs)
    alone = run(outputs, "--features", str(b), "--jobs", "1")
    assert alone.exit_code == 0, alone.output
    fused = run(outputs, "--features", str(a), "--features", str(b), "--jobs", "1")
    assert fused.exit_code == 0, fused.output

    loaded = next(line for line in fused.output.splitlines() if line.startswith("loaded"))
    assert str(a) in loaded and str(b) in loaded, loaded

    report = next(p for p in (outputs / "reports").iterdir() if "+" in p.name)
    page = (report / "index.html").read_text(encoding="utf-8")
    title = re.search(r"<h1>(.*?)</h1>", page).group(1)
    assert "fused" in title and "toy-vgg16-avg" in title and "toy-resnet50-avg" in title, title
    assert re.search(r"<title>(.*?)</title>", page).group(1) == title
    picture = Image.open(report / "confusion.png").text["Title"]
    assert "fused" in picture and "toy-vgg16-avg" in picture and "toy-resnet50-avg" in picture

    index = (outputs / "index.html").read_text(encoding="utf-8")
    pivot = index[:index.index("<h2>All runs")]
    names = re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td>", pivot)
    # The fused run has a row of its own, apart from the run on resnet50 features alone.
    assert names == [("toy-resnet50-avg", "resnet50"),
                     ("toy-vgg16-avg + toy-resnet50-avg", "vgg16 + resnet50")], names
    assert "<td>toy-vgg16-avg + toy-resnet50-avg</td>" in index[index.index("<h2>All runs"):]

    history = run(outputs, "--history")
    assert history.exit_code == 0, history.output
    assert "vgg16 avg + resnet50 avg" in history.output
    assert "…" not in history.output
