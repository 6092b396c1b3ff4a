"""The real extraction engine with synthetic rows: no TensorFlow, no model.

`SyntheticRows` is a distributor that writes each shard's part as `run_shard` does,
through the real `PartWriter`, with rows fixed by each image's path instead of a
model's output. Everything else is the real `extraction.run`: the lock, the reuse, resume
and update decisions, the digest checks, consolidation and clean-up. Fault tests that
need many runs use it: a run costs milliseconds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from extract import extraction, parts
from extract.distributor import ShardJob
from extract.extraction import Outcome
from extract.scan import scan
from extract.settings import RunOptions, Settings
from extract.shard import ShardResult

FEATURE_DIM = 25_088  # VGG16 flatten at 224 px
SETTINGS = Settings("vgg16", "random", "flatten", 224)
# Blocks of 10 rows (1 MB), shards of about 20 images.
OPTIONS = RunOptions(batch_size=10, buffer_size=10, shard_size=20)


def synthetic_row(path: str) -> np.ndarray:
    """A sparse non-negative row, like a ReLU feature map, fixed by the image's path."""
    seed = int(hashlib.sha256(path.encode()).hexdigest()[:8], 16)
    row = np.random.default_rng(seed).standard_normal(FEATURE_DIM, dtype=np.float32)
    return np.maximum(row, 0)


class SyntheticRows:
    """A distributor that writes each shard's part as `run_shard` does, rows from
    `synthetic_row` instead of a model; files named `*broken*` are unreadable.
    `computed` lists the images of each shard it ran."""

    def __init__(self) -> None:
        self.computed: list[list[str]] = []

    def run(self, jobs: list[ShardJob], progress: Callable[[int], None]
            ) -> Iterator[ShardResult]:
        for job in jobs:
            attrs = {"engine": "tensorflow", "precision": "float32", "device": "synthetic",
                     "feature_dim": FEATURE_DIM, "shard_key": job.shard.key}
            writer = parts.PartWriter(job.part, feature_dim=FEATURE_DIM,
                                      dtype=job.settings.dtype,
                                      buffer_size=job.options.buffer_size, attrs=attrs)
            try:
                for path in job.shard.paths:
                    if "broken" in path:
                        writer.skip(path)
                    else:
                        writer.add(synthetic_row(path), path)
                writer.finish()
            except BaseException:
                writer.abandon()
                raise
            self.computed.append(job.shard.paths)
            yield ShardResult(job.part, writer.n_rows, len(writer.skipped))


def extract_once(root: Path, output: Path, *, distributor: SyntheticRows | None = None,
                 options: RunOptions = OPTIONS,
                 log: Callable[[str], None] = lambda line: None) -> Outcome:
    """One `extract` of `root` into `output`, as the command runs it."""
    return extraction.run(scan(root), SETTINGS, output, options=options,
                      dataset_name="synthetic", distributor=distributor or SyntheticRows(),
                      log=log, progress=False)


def add_images(root: Path, start: int, stop: int) -> Path:
    """Images start..stop-1 per class, and one unreadable one; the scan takes these
    files for images (their bytes are never decoded here)."""
    for label in range(3):
        folder = root / f"class_{label}"
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(start, stop):
            (folder / f"img_{index:03d}.jpg").write_bytes(f"{label}/{index}".encode())
    (root / "class_1" / f"broken_{start:03d}.jpg").write_bytes(b"")
    return root
