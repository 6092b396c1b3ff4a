"""`inspect` and classify's leakage warning on real photos: 100 flowers17 photos of five
look-alike classes, with 8 planted copies (resized, cropped, re-encoded), through
efficientnet_lite0 (ImageNet weights, shipped as a package: no download)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from bench.planted import PlantedCopy, link_photos, plant_copies
from classify import protocol
from classify.cli import main as classify_main
from classify.inspection.cli import main as inspect_main
from classify.inspection.run import InspectConfig, run
from extract.cli import main as extract_main
from extract.datasets import FLOWERS17_CLASSES, FLOWERS17_PER_CLASS
from extract.featurefile import read_features
from tests.helpers.imagefolders import FLOWERS17_JPG

# 20 photos each of daisy, coltsfoot, dandelion, buttercup and windflower: the first of
# each class that have no near-duplicate in flowers17 (it holds many, checked by eye), so
# that every pair found is planted. Distinct photos here reach a cosine similarity of 0.88.
PHOTOS = (801, 803, 804, 805, 807, 810, 812, 813, 815, 816, 818, 822, 825, 827, 829, 830, 835,
          839, 845, 846, 881, 883, 884, 888, 890, 891, 892, 894, 895, 896, 897, 898, 899, 902,
          904, 905, 911, 912, 913, 914, 963, 965, 968, 969, 970, 972, 973, 975, 976, 977, 978,
          979, 980, 981, 984, 987, 989, 996, 997, 998, 1121, 1125, 1126, 1127, 1128, 1129, 1132,
          1133, 1135, 1136, 1137, 1141, 1145, 1149, 1153, 1155, 1156, 1157, 1158, 1159, 1201,
          1203, 1204, 1206, 1207, 1210, 1212, 1213, 1218, 1220, 1221, 1223, 1224, 1225, 1227,
          1228, 1229, 1231, 1232, 1233)
COPIES = 8
CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(n)), None)


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[PlantedCopy]]:
    """The photos with their planted copies, extracted: (feature file, the copies)."""
    if not FLOWERS17_JPG.is_dir():
        pytest.skip(f"{FLOWERS17_JPG} is absent")
    base = tmp_path_factory.mktemp("planted")
    photos = [FLOWERS17_JPG / f"image_{n:04d}.jpg" for n in PHOTOS]
    classes = [FLOWERS17_CLASSES[(n - 1) // FLOWERS17_PER_CLASS] for n in PHOTOS]
    root = link_photos(photos, classes, base / "photos")
    copies = plant_copies(root, COPIES, seed=0)
    features = base / "outputs" / "features" / "planted-lite0.h5"
    done = CliRunner().invoke(extract_main, ["--dataset", str(root), "--backbone",
                                             "efficientnet_lite0", "--output", str(features)])
    assert done.exit_code == 0, done.output
    return features, copies


def _copy_groups(findings: dict) -> list[frozenset[str]]:
    return [frozenset(f["paths"]) for f in findings["findings"]
            if f["kind"] in ("near_duplicate", "exact_copy")]


def test_planted_copies_are_found_and_distinct_look_alikes_are_not(
        planted: tuple[Path, list[PlantedCopy]], tmp_path: Path) -> None:
    features, copies = planted
    outputs = tmp_path / "outputs"
    result = CliRunner().invoke(inspect_main, ["--features", str(features),
                                               "--outputs", str(outputs)])
    assert result.exit_code == 0, result.output
    folder = outputs / "inspect" / "planted-lite0"
    found = _copy_groups(json.loads((folder / "findings.json").read_text()))
    wanted = {frozenset((c.original, c.copy)) for c in copies}
    recall = len(wanted & set(found)) / len(wanted)
    precision = sum(group in wanted for group in found) / max(1, len(found))
    assert recall >= 7 / 8 and precision == 1.0, (recall, precision, found)
    rows = list((folder / "findings.csv").read_text().splitlines())
    assert rows[0].startswith("kind,score,paths") and len(rows) > len(found)


def _flipped(features: Path, dest: Path, seed: int) -> np.ndarray:
    """A copy of the file with 5 % of the photos (not the copies) given another class."""
    shutil.copy(features, dest)
    with h5py.File(dest, "r+") as f:
        y = f["labels"][()]
        photos = np.flatnonzero(["copy_of_" not in p for p in f["paths"].asstr()[()]])
        rng = np.random.default_rng(seed)
        flips = rng.choice(photos, round(0.05 * len(photos)), replace=False)
        y[flips] = (y[flips] + rng.integers(1, 5, len(flips))) % 5
        f["labels"][...] = y
    return flips


def test_planted_label_flips_are_found_with_few_false_alarms(
        planted: tuple[Path, list[PlantedCopy]], tmp_path: Path) -> None:
    features, _ = planted
    found = flipped = hits = 0
    for seed in range(5):  # 25 flips in all: one draw of 5 is too few to judge
        path = tmp_path / f"flipped-{seed}.h5"
        flips = set(_flipped(features, path, seed).tolist())
        result = run(InspectConfig(path, tmp_path / "outputs"))
        flagged = {f.rows[0] for f in result.inspection.of_kind("label_error")}
        found, flipped, hits = found + len(flagged), flipped + len(flips), hits + len(flagged & flips)
    recall, precision = hits / flipped, hits / max(1, found)
    assert recall >= 0.6 and precision >= 0.7, (recall, precision)


def _arranged(features: Path, dest: Path, copies: list[PlantedCopy], apart: int | None) -> None:
    """The file with rows swapped within classes (the random split depends on the labels
    alone, so it stays the same) so that every planted copy sits on its original's side
    of classify's split for seed 42, but copy number `apart`, which goes to the other side."""
    data = read_features(features)
    split = protocol.split_labels(data.y, data.label_names, 0.25, 42, lambda _: None, features)
    side = np.zeros(len(data.y), dtype=bool)
    side[split.test_rows] = True
    row_of = {path: i for i, path in enumerate(data.paths)}
    order = np.arange(len(data.y))
    for number, copy in enumerate(copies):
        a, b = row_of[copy.original], row_of[copy.copy]
        want_same = number != apart
        if (side[order[a]] == side[order[b]]) == want_same:
            continue
        # Swap the copy's row with another photo of its class on the side it needs.
        needed = side[order[a]] if want_same else not side[order[a]]
        planted_rows = {row_of[p] for c in copies for p in (c.original, c.copy)}
        swap = next(i for i in range(len(order)) if data.y[i] == data.y[b]
                    and side[order[i]] == needed and i not in planted_rows)
        order[[b, swap]] = order[[swap, b]]
    # `order[row]` is where an image goes: write image `row` into that row.
    placed = np.empty_like(order)
    placed[order] = np.arange(len(order))
    shutil.copy(features, dest)
    with h5py.File(dest, "r+") as f:
        f["features"][...] = data.X[placed]
        f["paths"][...] = np.array(data.paths, dtype=object)[placed]


def _classify(features: Path, outputs: Path) -> str:
    result = CliRunner().invoke(classify_main, ["--features", str(features), "--outputs",
                                                str(outputs), "--jobs", "1"])
    assert result.exit_code == 0, result.output
    return result.output


def test_classify_warns_of_leakage_exactly_when_a_planted_copy_straddles_the_split(
        planted: tuple[Path, list[PlantedCopy]], tmp_path: Path) -> None:
    features, copies = planted
    apart, together = tmp_path / "apart.h5", tmp_path / "together.h5"
    _arranged(features, together, copies, apart=None)
    _arranged(features, apart, copies, apart=3)

    quiet = _classify(together, tmp_path / "together")
    assert "straddle" not in quiet
    warned = _classify(apart, tmp_path / "apart")
    lines = [line for line in warned.splitlines() if "straddle" in line]
    assert lines == ["warning: 1 group(s) of near-duplicates straddle the train/test split (1 "
                     + "test image): the test score may be inflated; the report lists them"]
    report = next((tmp_path / "apart" / "reports").iterdir()) / "index.html"
    leakage = report.read_text(encoding="utf-8").split('<h2 id="leakage">')[1].split("<h2")[0]
    assert copies[3].original in leakage and copies[3].copy in leakage
    assert leakage.count("data:image/jpeg;base64,") == 2  # the pair's thumbnails
    inspected = run(InspectConfig(apart, tmp_path / "apart"))
    assert [set(f.paths) for f in inspected.inspection.of_kind("leakage")] == [
        {copies[3].original, copies[3].copy}]


def _chromium(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--user-data-dir={cwd / 'chromium-profile'}", *args],
        cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                    "(Debian: apt-get install chromium; .ci/run installs it)")
def test_the_page_renders_in_headless_chromium(
        planted: tuple[Path, list[PlantedCopy]], tmp_path: Path) -> None:
    features, _ = planted
    result = run(InspectConfig(features, tmp_path / "outputs"))
    page = result.page.as_uri()
    dom = _chromium("--dump-dom", page, cwd=tmp_path)
    assert dom.returncode == 0, dom.stderr
    groups = result.inspection.of_kind("near_duplicate")
    assert dom.stdout.count('<div class="group">') == len(groups) + len(
        result.inspection.of_kind("leakage"))
    assert len(re.findall(r"<circle ", dom.stdout)) == len(PHOTOS) + COPIES  # every image mapped
    assert len(re.findall(r'<template id="t\d+"><img src="data:image/jpeg', dom.stdout)) == \
        len(PHOTOS) + COPIES  # each with its thumbnail to show on hover
    shot = tmp_path / "page.png"
    done = _chromium("--window-size=1280,2400", f"--screenshot={shot}", page, cwd=tmp_path)
    assert done.returncode == 0 and shot.is_file(), done.stderr
    pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3)
    # The photos' thumbnails paint thousands of colours; text and tables alone a few.
    assert len(np.unique(pixels, axis=0)) > 2000
    index = (tmp_path / "outputs" / "index.html").read_text(encoding="utf-8")
    assert 'href="inspect/planted-lite0/index.html"' in index
