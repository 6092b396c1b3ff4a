"""Reader: image files to preprocessed batches, decoded and resized in parallel.

The reader is a tf.data pipeline that decodes and resizes in parallel and prefetches,
so decoding overlaps the model and only a few batches are ever in memory. Unreadable
files are dropped by `ignore_errors`; each element carries its index in the file
list, so the caller sees exactly which files were skipped. `predict` reuses it.
The model side is a mapper (extract.mapper).
"""

from __future__ import annotations

import io
import math
import os
import time
import warnings
from collections.abc import Callable
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
PREFETCH_BATCHES = 2  # one batch ready while the model works on the current one
# Decoding threads are sized for this much more than the model's rate, so that a slow
# photo or a busy core does not leave the model waiting.
DECODE_HEADROOM = 1.5
DECODE_SAMPLE = 6  # files timed to estimate the decoding cost of a folder
# A JPEG much larger than the input is decoded at 1/2, 1/4 or 1/8 scale (libjpeg's DCT
# scaling), as long as its shorter side keeps this multiple of the input size, so the
# resize still only shrinks it.
DCT_MARGIN = 1.5
DCT_RATIOS = (1, 2, 4, 8)

import numpy as np
import tensorflow as tf
from PIL import Image

from common.hardware import cores
from extract.scan import PIL_EXTENSIONS

# A damaged TIFF makes PIL warn before it fails; our "skipped (unreadable)" line names it.
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.TiffImagePlugin")

PIL_PATTERN = r".*\.(" + "|".join(sorted(e.lstrip(".") for e in PIL_EXTENSIONS)) + ")"


def decode_rgb(data: bytes) -> np.ndarray:
    """An image file's bytes as (height, width, 3) uint8 RGB; its first frame if several.

    For the formats TensorFlow lacks (TIFF): the pipeline calls it through
    `tf.numpy_function` for these files only, so the common formats keep TensorFlow's
    own decoders and their parallelism. Raises PIL's own errors for a file it cannot
    read; the reader then skips the file.
    """
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)


def _decode_pil(data: tf.Tensor) -> tf.Tensor:
    image = tf.numpy_function(decode_rgb, [data], tf.uint8, stateful=False)
    image.set_shape([None, None, 3])
    return image


def _decode_jpeg(data: tf.Tensor, size: int) -> tf.Tensor:
    """A JPEG decoded at the smallest DCT scale that keeps DCT_MARGIN x `size` pixels.

    Scaled decoding skips most of the inverse DCT, upsampling and colour conversion of
    a large photo (the entropy decoding stays), and averages each block instead of
    letting the bilinear resize skip pixels. At ratio 1 this is exactly
    tf.io.decode_image's result, so photos near the input size decode as before.
    """
    height_width = tf.io.extract_jpeg_shape(data)[:2]
    shorter = tf.reduce_min(height_width)
    fits = [shorter // ratio >= math.ceil(DCT_MARGIN * size) for ratio in DCT_RATIOS[1:]]
    choice = tf.reduce_sum(tf.cast(tf.stack(fits), tf.int32))
    return tf.switch_case(choice, [
        (lambda ratio=ratio: tf.io.decode_jpeg(data, channels=3, ratio=ratio))
        for ratio in DCT_RATIOS
    ])


def _decode(size: int) -> Callable[[tf.Tensor, tf.Tensor], tuple[tf.Tensor, tf.Tensor]]:
    def decode(index: tf.Tensor, path: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        data = tf.io.read_file(path)
        # channels=3 turns grayscale, palette, CMYK and RGBA into RGB; a GIF gives its
        # first frame. EXIF orientation is not applied (pixels are used as stored).
        image = tf.cond(
            tf.strings.regex_full_match(tf.strings.lower(path), PIL_PATTERN),
            lambda: _decode_pil(data),
            lambda: tf.cond(
                tf.io.is_jpeg(data),
                lambda: _decode_jpeg(data, size),
                lambda: tf.io.decode_image(data, channels=3, expand_animations=False,
                                           dtype=tf.uint8),
            ),
        )
        image.set_shape([None, None, 3])
        image = tf.image.resize(image, (size, size), method="bilinear")
        return index, image

    return decode


def decode_seconds(files: list[str], size: int) -> float:
    """Seconds one thread takes to read, decode and resize one of `files` (median of a
    few spread over the list; 0.0 when none of them can be read)."""
    if not files:
        return 0.0
    decode = tf.function(_decode(size))
    picks = sorted({round(i * (len(files) - 1) / max(1, DECODE_SAMPLE - 1))
                    for i in range(DECODE_SAMPLE)})
    timings = []
    for first, pick in enumerate([picks[0], *picks]):  # the first call traces: untimed
        started = time.perf_counter()
        try:
            _, image = decode(tf.constant(0, tf.int64), tf.constant(files[pick]))
            image.numpy()
        except tf.errors.OpError:
            continue  # an unreadable file: the reader skips and reports it, not timed here
        if first:
            timings.append(time.perf_counter() - started)
    return float(np.median(timings)) if timings else 0.0


def balanced_threads(files: list[str], size: int, forward_rate: float | None,
                     on_gpu: bool = False) -> int:
    """Decoding threads that keep up with a model running at `forward_rate` images/s.

    From the measured decoding cost of these files: enough threads to decode
    DECODE_HEADROOM times faster than the model, at most one per core. A GPU model
    leaves the cores to the reader, and an unknown rate gets them all; on a CPU the
    model needs the cores too, and each thread beyond need takes them from it.
    """
    if on_gpu or forward_rate is None:
        return cores()
    need = DECODE_HEADROOM * forward_rate * decode_seconds(files, size)
    return max(1, min(cores(), math.ceil(need)))


def image_batches(
    files: list[str],
    *,
    size: int,
    batch_size: int,
    preprocess: Callable[[Any], Any],
    threads: int | None = None,
) -> tf.data.Dataset:
    """Batches of (indices into `files`, preprocessed float32 images), in file order.

    `threads` decode in parallel: give `mapper.reader_threads(mapper, files, size)`,
    sized against the model. None, for a caller that knows no model, leaves one core
    to it and decodes on the others (at least one thread).
    """
    threads = threads or max(1, cores() - 1)
    indices = tf.range(len(files), dtype=tf.int64)
    dataset = tf.data.Dataset.from_tensor_slices((indices, tf.constant(files, dtype=tf.string)))
    dataset = dataset.map(_decode(size), num_parallel_calls=threads, deterministic=True)
    dataset = dataset.ignore_errors()
    dataset = dataset.batch(batch_size)
    dataset = dataset.map(
        lambda index, images: (index, preprocess(images)),
        num_parallel_calls=threads,
        deterministic=True,
    )
    options = tf.data.Options()
    # Decoding gets its own thread pool: sharing TensorFlow's pools, it starved the
    # model of cores (VGG16 end to end at 0.55-0.66 of its forward speed on 2 cores).
    options.threading.private_threadpool_size = threads
    # Fixed sizes instead of autotuning: the autotuner's thread sometimes held the
    # iterator's destructor, idle, for up to 18 s after the last batch.
    options.autotune.enabled = False
    return dataset.prefetch(PREFETCH_BATCHES).with_options(options)
