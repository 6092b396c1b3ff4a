"""Synthetic labelled image folders made at test time (no data ships with the tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# The photos shared beside the repository (absent where it was cloned alone).
FLOWERS17_JPG = Path(__file__).resolve().parents[3] / "shared" / "data" / "flowers17" / "jpg"


def class_image(label: int, index: int, size: tuple[int, int] = (48, 40)) -> Image.Image:
    """A noisy image whose colour depends on its class, so features carry the label."""
    rng = np.random.default_rng(1000 * label + index)
    base = np.zeros((size[1], size[0], 3), dtype=np.float64)
    base[..., label % 3] = 160 + 30 * (label // 3)
    noise = rng.normal(0, 25, base.shape)
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))


def make_folder(
    root: Path, classes: int = 3, per_class: int = 6, ext: str = "jpg"
) -> Path:
    """root/class_k/img_i.<ext> for k < classes, i < per_class."""
    for label in range(classes):
        folder = root / f"class_{label}"
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            class_image(label, index).save(folder / f"img_{index:03d}.{ext}")
    return root


def smooth_jpeg(path: Path, width: int, height: int) -> str:
    """A smooth photo-like JPEG: gradients plus mild noise."""
    y, x = np.mgrid[0:height, 0:width]
    rng = np.random.default_rng(0)
    rgb = np.stack([255 * x / width, 255 * y / height, 128 + 60 * np.sin(x / 40.0)], -1)
    rgb = np.clip(rgb + rng.normal(0, 4, rgb.shape), 0, 255).astype(np.uint8)
    Image.fromarray(rgb).save(path, quality=92)
    return str(path)
