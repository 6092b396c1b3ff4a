"""Reader and mapper: image files to preprocessed batches to feature batches.

The reader is a tf.data pipeline that decodes and resizes in parallel and prefetches,
so decoding overlaps the model and only a few batches are ever in memory. Unreadable
files are dropped by `ignore_errors`; each element carries its index in the file
list, so the caller sees exactly which files were skipped. `predict` reuses both.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable, Iterator
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
DECODE_THREADS = max(1, (os.cpu_count() or 2) // 4)
PREFETCH_BATCHES = 2  # one batch ready while the model works on the current one

import numpy as np
import tensorflow as tf

from extract.pil_decode import decode_rgb
from extract.scan import PIL_EXTENSIONS

PIL_PATTERN = r".*\.(" + "|".join(sorted(e.lstrip(".") for e in PIL_EXTENSIONS)) + ")"


def _decode_pil(data: tf.Tensor) -> tf.Tensor:
    image = tf.numpy_function(decode_rgb, [data], tf.uint8, stateful=False)
    image.set_shape([None, None, 3])
    return image


def _decode(size: int) -> Callable[[tf.Tensor, tf.Tensor], tuple[tf.Tensor, tf.Tensor]]:
    def decode(index: tf.Tensor, path: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        data = tf.io.read_file(path)
        # channels=3 turns grayscale, palette, CMYK and RGBA into RGB; a GIF gives its
        # first frame. EXIF orientation is not applied (pixels are used as stored).
        image = tf.cond(
            tf.strings.regex_full_match(tf.strings.lower(path), PIL_PATTERN),
            lambda: _decode_pil(data),
            lambda: tf.io.decode_image(data, channels=3, expand_animations=False,
                                       dtype=tf.uint8),
        )
        image = tf.image.resize(image, (size, size), method="bilinear")
        return index, image

    return decode


def image_batches(
    files: list[str],
    *,
    size: int,
    batch_size: int,
    preprocess: Callable[[Any], Any],
) -> tf.data.Dataset:
    """Batches of (indices into `files`, preprocessed float32 images), in file order."""
    indices = tf.range(len(files), dtype=tf.int64)
    dataset = tf.data.Dataset.from_tensor_slices((indices, tf.constant(files, dtype=tf.string)))
    dataset = dataset.map(_decode(size), num_parallel_calls=DECODE_THREADS, deterministic=True)
    dataset = dataset.ignore_errors()
    dataset = dataset.batch(batch_size)
    dataset = dataset.map(
        lambda index, images: (index, preprocess(images)),
        num_parallel_calls=DECODE_THREADS,
        deterministic=True,
    )
    options = tf.data.Options()
    # Decoding gets its own small thread pool: sharing TensorFlow's pools, it starved the
    # model of cores (VGG16 end to end at 0.55-0.66 of its forward speed on 2 cores;
    # 0.97 with one decoding thread, which still decodes several hundred photos/s).
    options.threading.private_threadpool_size = DECODE_THREADS
    # Fixed sizes instead of autotuning: the autotuner's thread sometimes held the
    # iterator's destructor, idle, for up to 18 s after the last batch.
    options.autotune.enabled = False
    return dataset.prefetch(PREFETCH_BATCHES).with_options(options)


_FORWARDS: weakref.WeakKeyDictionary[Any, Callable[[tf.Tensor], tf.Tensor]] = (
    weakref.WeakKeyDictionary()
)


def compiled_forward(model: Any) -> Callable[[tf.Tensor], tf.Tensor]:
    """The model in inference mode as one traced graph: faster than a predict() loop.

    The batch dimension is left open, so the short last batch reuses the same graph
    instead of tracing a second one; the graph is kept per model and traced once.
    """
    if model in _FORWARDS:
        return _FORWARDS[model]
    _, height, width, channels = model.input_shape

    @tf.function(input_signature=[tf.TensorSpec([None, height, width, channels], tf.float32)])
    def forward(images: tf.Tensor) -> tf.Tensor:
        return model(images, training=False)

    _FORWARDS[model] = forward
    return forward


def feature_batches(
    files: list[str],
    model: Any,
    *,
    size: int,
    batch_size: int,
    preprocess: Callable[[Any], Any],
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(indices, features) per batch; indices missing from the stream were unreadable."""
    forward = compiled_forward(model)
    for indices, images in image_batches(
        files, size=size, batch_size=batch_size, preprocess=preprocess
    ):
        yield indices.numpy(), forward(images).numpy()
