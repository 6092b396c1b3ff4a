"""Real photographs for benchmarks: flowers17 from ../shared/data, sorted into classes."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from extract.datasets import FLOWERS17_CLASSES, FLOWERS17_PER_CLASS

SHARED_JPG = Path(__file__).resolve().parents[2] / "shared" / "data" / "flowers17" / "jpg"


def flowers_subset(n: int, dest: Path) -> Path:
    """dest/<class>/image_NNNN.jpg symlinks: n photos spread evenly over the 17 classes."""
    if not SHARED_JPG.is_dir():
        sys.exit(f"skipped: {SHARED_JPG} is absent (benchmarks on real photos need it)")
    n = min(n, FLOWERS17_PER_CLASS * len(FLOWERS17_CLASSES))
    for i in range(n):
        label, k = i % len(FLOWERS17_CLASSES), i // len(FLOWERS17_CLASSES)
        number = label * FLOWERS17_PER_CLASS + k + 1
        folder = dest / FLOWERS17_CLASSES[label]
        folder.mkdir(parents=True, exist_ok=True)
        link = folder / f"image_{number:04d}.jpg"
        if not link.exists():
            os.symlink(SHARED_JPG / link.name, link)
    return dest
