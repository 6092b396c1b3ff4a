"""`extract` at the smallest size VGG16 takes, with random weights, and the backbone's own
output to compare its rows with."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from click.testing import CliRunner, Result
from PIL import Image

from extract.backbones import registry
from extract.cli import main

SIZE = 32  # the smallest input VGG16 accepts; keeps every test fast


def extract_small(root: Path, out: Path, *extra: str) -> Result:
    """`extract` of `root` into `out`: vgg16, random weights, SIZE px."""
    args = ["--dataset", str(root), "--backbone", "vgg16", "--weights", "random",
            "--image-size", str(SIZE), "--output", str(out), *extra]
    return CliRunner().invoke(main, args)


def reference_features(model: Any, name: str, files: Sequence[str | Path], size: int
                       ) -> np.ndarray:
    """The backbone's own output on images decoded outside the pipeline."""
    import tensorflow as tf  # only the tests that compare rows pay for it

    images = []
    for path in files:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        images.append(tf.image.resize(rgb, (size, size), method="bilinear").numpy())
    batch = registry.preprocess_function(name)(np.stack(images))
    return model.predict(batch, verbose=0)
