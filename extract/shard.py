"""run_shard: one shard's images through reader, mapper and buffered writer to its part.

This is the one place that turns the reader's batches into rows per image: the reader
drops unreadable files, each batch carries file indices, and a gap in them is an
unreadable file. `predict` streams its images through `rows` as well.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from extract import mapper as engines
from extract import parts
from extract.backbones import registry
from extract.mapper import Mapper
from extract.plan import Shard
from extract.settings import RunOptions, Settings

# Decoding threads measured for each mapper, once (its later shards reuse the figure).
_READER_THREADS: weakref.WeakKeyDictionary[Mapper, int] = weakref.WeakKeyDictionary()


def reader_threads(mapper: Mapper, files: list[str], input_size: int) -> int:
    """Decoding threads that keep `mapper` busy, measured on its first files."""
    if mapper not in _READER_THREADS:
        _READER_THREADS[mapper] = engines.reader_threads(mapper, files, input_size)
    return _READER_THREADS[mapper]


def rows(files: list[str], mapper: Mapper, *, backbone: str, input_size: int,
         batch_size: int, preprocessing: str | None = None
         ) -> Iterator[tuple[int, np.ndarray | None]]:
    """(index into `files`, feature row) for every file in order; None: unreadable.
    `preprocessing`: a model file's (Settings.preprocessing)."""
    from extract import reader  # TensorFlow loads here, once there is work

    batches = reader.image_batches(files, size=input_size, batch_size=batch_size,
                                     preprocess=registry.preprocess_function(backbone,
                                                                             preprocessing),
                                     threads=reader_threads(mapper, files, input_size))
    expected = 0  # next index not yet yielded
    for indices, images in batches:
        features = mapper(images)
        for index, row in zip(indices.numpy().tolist(), features):
            for missing in range(expected, index):
                yield missing, None
            yield index, row
            expected = index + 1
    for missing in range(expected, len(files)):
        yield missing, None


@dataclass(frozen=True)
class ShardResult:
    """What one shard did: rows written into its part, images it could not read."""

    part: Path
    rows: int
    skipped: int


def run_shard(shard: Shard, part: Path, settings: Settings, options: RunOptions,
              mapper: Mapper, *, progress: Callable[[int], None] = lambda n: None) -> ShardResult:
    """Compute `shard` into the part file `part`; nothing is left under that name unless
    the whole shard is in it (a failure or Ctrl-C drops the unfinished part).

    `progress` hears of the images handled a batch at a time, so that the first call
    marks the end of the first batch (see extraction.WarmedUpBar)."""
    from extract.reader import tf

    attrs = {**mapper.attrs(), "feature_dim": mapper.feature_dim,
             "tensorflow_version": tf.__version__, "shard_key": shard.key}
    writer = parts.PartWriter(part, feature_dim=mapper.feature_dim, dtype=settings.dtype,
                              buffer_size=options.buffer_size, attrs=attrs,
                              rows=len(shard.rows))
    handled = 0
    try:
        for index, row in rows(shard.files(), mapper, backbone=settings.backbone,
                               input_size=settings.input_size,
                               batch_size=options.batch_size,
                               preprocessing=settings.preprocessing):
            if row is None:
                writer.skip(shard.paths[index])
            else:
                writer.add(row, shard.paths[index])
            handled += 1
            if handled % options.batch_size == 0:
                progress(options.batch_size)
        if handled % options.batch_size:
            progress(handled % options.batch_size)
        writer.finish()
    except BaseException:
        writer.abandon()
        raise
    return ShardResult(part, writer.n_rows, len(writer.skipped))
