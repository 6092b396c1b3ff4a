"""`make demo`'s extraction: a dataset that needs no download, through a real backbone.

scikit-learn bundles 1,797 handwritten digits (8x8 grey levels); written out once as
64x64 PNG files in one folder per digit, they make a ten-class image dataset that any
fresh clone has. The features come from ImageNet weights when they can be had, else
from random weights, and the demo says which.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
import numpy as np
from PIL import Image

import common.quiet  # noqa: F401 - first: keeps native log lines off the terminal
from extract.backbones import registry
from extract.cli import main as extract_main

DIGITS_DIR = Path("datasets") / "digits"
BACKBONE = "efficientnet_lite0"
IMAGE_SIZE = 64


def write_digits(root: Path) -> Path:
    """datasets/digits/<0..9>/NNNN.png from sklearn's bundled digits; once, atomically."""
    if root.is_dir():
        return root
    from sklearn.datasets import load_digits

    digits = load_digits()
    tmp = root.with_name(root.name + ".part")
    for index, (pixels, label) in enumerate(zip(digits.images, digits.target)):
        folder = tmp / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        grey = (255 - pixels * 255 / 16).astype(np.uint8)  # dark ink on white paper
        image = Image.fromarray(grey).resize((IMAGE_SIZE, IMAGE_SIZE), Image.BICUBIC)
        image.save(folder / f"{index:04d}.png")
    os.replace(tmp, root)
    return root


def choose_weights(backbone: str) -> str:
    """imagenet when the backbone's ImageNet weights load here, else random (said plainly)."""
    try:
        registry.build(backbone, weights="imagenet", pooling="avg", input_size=IMAGE_SIZE)
        return "imagenet"
    except registry.BackboneError as exc:
        click.echo(f"demo: ImageNet weights unavailable ({exc}); continuing with --weights "
                   "random, so accuracy shows a random-feature baseline", err=True)
        return "random"


def main() -> None:
    root = write_digits(DIGITS_DIR)
    weights = choose_weights(BACKBONE)
    click.echo(f"demo: extracting {root} with {BACKBONE}, --weights {weights}")
    extract_main(["--dataset", str(root), "--backbone", BACKBONE, "--weights", weights],
                 standalone_mode=True)


if __name__ == "__main__":
    sys.exit(main())
