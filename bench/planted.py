"""Planted faults in real photos, to measure what `inspect` finds: copies and label flips.

A copy is a photo resized to 50-90 %, cropped by up to 4 % on each side and re-encoded
at JPEG quality 60-90, saved beside the photos of its class; a flip moves a photo's
link to another class folder. Both are seeded, and both return what was planted, so a
benchmark or a test can score the findings against it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

COPY_PREFIX = "copy_of_"


@dataclass(frozen=True)
class PlantedCopy:
    original: str  # relative to the dataset root
    copy: str
    scale: float
    quality: int


def plant_copies(root: Path, n: int, seed: int = 0) -> list[PlantedCopy]:
    """`n` altered copies of distinct photos below `root` (class folders), each saved in
    its original's folder as copy_of_<name>.jpg."""
    rng = np.random.default_rng(seed)
    photos = sorted(p for p in root.rglob("*.jpg") if not p.name.startswith(COPY_PREFIX))
    planted = []
    for index in rng.choice(len(photos), size=min(n, len(photos)), replace=False):
        source = photos[index]
        scale, quality = float(rng.uniform(0.5, 0.9)), int(rng.integers(60, 91))
        with Image.open(source) as image:
            image = image.convert("RGB")
            width, height = image.size
            left, top, right, bottom = rng.uniform(0, 0.04, size=4) * [width, height, width, height]
            image = image.crop((int(left), int(top), width - int(right), height - int(bottom)))
            image = image.resize((max(1, int(image.width * scale)),
                                  max(1, int(image.height * scale))), Image.Resampling.BILINEAR)
            target = source.with_name(COPY_PREFIX + source.name)
            image.save(target, format="JPEG", quality=quality)
        planted.append(PlantedCopy(str(source.relative_to(root)), str(target.relative_to(root)),
                                   scale, quality))
    return planted


@dataclass(frozen=True)
class PlantedFlip:
    path: str  # relative to the dataset root, after the move
    given: str  # the class folder it now sits in
    true: str  # the class it belongs to


def plant_flips(root: Path, fraction: float, seed: int = 0) -> list[PlantedFlip]:
    """Move `fraction` of the photos below `root` (class folders) into another class's
    folder, chosen at random: their given label is then wrong."""
    rng = np.random.default_rng(seed)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    photos = sorted(p for p in root.rglob("*.jpg"))
    flips = []
    for index in rng.choice(len(photos), size=round(fraction * len(photos)), replace=False):
        source = photos[index]
        true = source.parent.name
        given = str(rng.choice([c for c in classes if c != true]))
        target = root / given / f"flipped_{source.name}"
        os.replace(source, target)
        flips.append(PlantedFlip(str(target.relative_to(root)), given, true))
    return flips


def link_photos(photos: Sequence[Path], labels: Sequence[str], dest: Path) -> Path:
    """dest/<label>/<name> symlinks to `photos` (the photos are read in place)."""
    for photo, label in zip(photos, labels):
        folder = dest / label
        folder.mkdir(parents=True, exist_ok=True)
        link = folder / photo.name
        if not link.exists():
            os.symlink(photo.resolve(), link)
    return dest
