"""The HTML pages: a run's report and outputs/index.html, checked as written and in Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from classify.cli import main
from classify.report.html import write_run_report
from extract.featurefile import read_features
from tests.helpers.featurefiles import set_attr, write_feature_file
from tests.helpers.imagefolders import class_image

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(n)), None)


def _classify(outputs: Path, *args: str) -> str:
    result = CliRunner().invoke(main, [*args, "--jobs", "1", "--outputs", str(outputs)])
    assert result.exit_code == 0, result.output
    return result.output


def _overlapping_run(outputs: Path, tmp_path: Path, *, with_images: bool) -> Path:
    """A classify run on overlapping classes (some test images wrong); its report folder.

    With images, every path in the feature file exists below dataset_root except one.
    """
    path = write_feature_file(outputs / "features" / "toy-vgg16-avg.h5", spread=0.6)
    root = tmp_path / "photos"
    set_attr(path, "dataset_root", str(root))
    if with_images:
        features = read_features(path)
        for index, (relative, label) in enumerate(zip(features.paths, features.y)):
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            class_image(int(label), index, size=(64, 64)).save(root / relative)
    _classify(outputs, "--features", str(path), "--model", "logreg", "--grid", "C=0.01,1")
    return next((outputs / "reports").iterdir())


def test_write_run_report_orders_mistakes_and_shows_placeholders(tmp_path: Path) -> None:
    root = tmp_path / "images"
    (root / "a").mkdir(parents=True)
    Image.new("RGB", (300, 200), "orange").save(root / "a" / "y.png")
    (root / "a" / "broken.png").write_bytes(b"not a png")
    page = write_run_report(
        tmp_path / "run", title="toy / logreg", settings={"model": "logreg", "protocol": {"cv": 3}},
        label_names=["a", "b", "c"], y_true=[0, 0, 0, 0, 1, 2], y_pred=[1, 2, 1, 0, 1, 2],
        confidence=[0.55, 0.91, 0.70, 0.99, 0.8, 0.6],
        test_paths=["a/broken.png", "a/y.png", "a/gone.png", "a/ok.png", "b/1.png", "c/2.png"],
        image_root=root,
    )
    text = page.read_text(encoding="utf-8")
    figures = re.findall(r"<figure>.*?</figure>", text)
    assert [re.search(r'muted">([^<]+)</div></figcaption', f).group(1) for f in figures] == [
        "a/y.png", "a/gone.png", "a/broken.png"]  # confidence 0.91, 0.70, 0.55: worst first
    assert "data:image/jpeg;base64," in figures[0]
    assert "image not found" in figures[1] and "image unreadable" in figures[2]
    assert "accuracy 0.5000" in text
    assert text.count('<th class="row">') == 3  # the confusion matrix: 3 rows,
    assert text.count('<td title="true ') == 5  # and a cell for each of the 5 (true, pred) pairs
    assert "<style>" in text and "<link" not in text and "<script" not in text


def test_classify_run_writes_pages_metrics_and_history_points_at_the_index(
    outputs: Path, tmp_path: Path
) -> None:
    report = _overlapping_run(outputs, tmp_path, with_images=False)
    metrics = json.loads((report / "metrics.json").read_text())
    images = metrics["test_predictions"]
    assert len(images) == metrics["n_test"]
    wrong = [i for i in images if i["true_class"] != i["predicted_class"]]
    assert 0 < len(wrong) < len(images), "the data should give some, not all, mistakes"
    assert all(i["path"].startswith(i["true_class"] + "/") for i in images)
    page = (report / "index.html").read_text(encoding="utf-8")
    assert page.count("<figure>") == len(wrong)
    assert page.count("image not found") == len(wrong)  # no images on disk: placeholders
    accuracy = sum(i["true_class"] == i["predicted_class"] for i in images) / len(images)
    assert f"accuracy {accuracy:.4f}" in page

    _classify(outputs, "--features", str(outputs / "features" / "toy-vgg16-avg.h5"),
              "--model", "knn")
    index = (outputs / "index.html").read_text(encoding="utf-8")
    assert "<th>knn</th>" in index and "<th>logreg</th>" in index
    links = re.findall(r'href="([^"]+)"', index)
    assert len(links) == 2 + 2  # one per cell of the pivot, one per run
    assert all((outputs / link).is_file() for link in links)
    history = CliRunner().invoke(main, ["--history", "--outputs", str(outputs)])
    assert str(outputs / "index.html") in history.output


def _chromium(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--user-data-dir={cwd / 'chromium-profile'}", *args],
        cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
    )


def _painted(png: Path) -> tuple[float, int]:
    """Fraction of pixels that are not white, and the number of distinct colours."""
    pixels = np.asarray(Image.open(png).convert("RGB")).reshape(-1, 3)
    return float((pixels < 245).any(axis=1).mean()), len(np.unique(pixels, axis=0))


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                    "(Debian: apt-get install chromium; .ci/run installs it)")
def test_pages_render_in_headless_chromium(outputs: Path, tmp_path: Path) -> None:
    report = _overlapping_run(outputs, tmp_path, with_images=True)
    page = report / "index.html"
    dom = _chromium("--dump-dom", page.as_uri(), cwd=tmp_path)
    assert dom.returncode == 0, dom.stderr
    wrong = [i for i in json.loads((report / "metrics.json").read_text())["test_predictions"]
             if i["true_class"] != i["predicted_class"]]
    assert len(re.findall(r'<img src="data:image/jpeg;base64,', dom.stdout)) == len(wrong)
    assert len(re.findall(r'<th class="row">', dom.stdout)) == 4
    pairs = {(i["true_class"], i["predicted_class"]) for i in
             json.loads((report / "metrics.json").read_text())["test_predictions"]}
    assert len(re.findall(r'<td title="true ', dom.stdout)) == len(pairs)

    shot = tmp_path / "run.png"
    done = _chromium("--window-size=1280,2600", f"--screenshot={shot}", page.as_uri(),
                     cwd=tmp_path)
    assert done.returncode == 0 and shot.is_file(), done.stderr
    assert Image.open(shot).size == (1280, 2600)
    painted, colours = _painted(shot)
    # Text, tables, bars and matrix alone paint a few percent in few colours; the noisy
    # thumbnails add thousands of colours.
    assert painted > 0.05 and colours > 2000, (painted, colours)
    for image in (tmp_path / "photos").rglob("*.jpg"):
        image.unlink()
    (report / "metrics.json").unlink()
    blank = tmp_path / "blank.png"
    _chromium("--window-size=1280,2600", f"--screenshot={blank}", page.as_uri(), cwd=tmp_path)
    assert _painted(blank)[1] == colours  # the page embeds its thumbnails: same picture

    index_shot = tmp_path / "index.png"
    done = _chromium("--window-size=1280,800", f"--screenshot={index_shot}",
                     (outputs / "index.html").as_uri(), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    index_dom = _chromium("--dump-dom", (outputs / "index.html").as_uri(), cwd=tmp_path).stdout
    assert "Best test accuracy by features and model" in index_dom
    assert _painted(index_shot)[0] > 0.01
