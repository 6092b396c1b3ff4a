"""Decoding for the image formats TensorFlow lacks (TIFF), through PIL.

The tf.data reader calls `decode_rgb` with `tf.numpy_function` for these files only, so
the common formats keep TensorFlow's own decoders and their parallelism.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image

# A damaged TIFF makes PIL warn before it fails; our "skipped (unreadable)" line names it.
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.TiffImagePlugin")


def decode_rgb(data: bytes) -> np.ndarray:
    """An image file's bytes as (height, width, 3) uint8 RGB; its first frame if several.

    Raises PIL's own errors for a file it cannot read; the reader then skips the file.
    """
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)
