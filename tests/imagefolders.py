"""Synthetic labelled image folders made at test time (no data ships with the tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


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
