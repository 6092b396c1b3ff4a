"""The runner: one extraction from a scanned folder to a complete feature file.

It decides between reuse (same folder, same settings, complete), resume (same, but
partial) and a fresh start, then drives reader -> mapper -> writer with a progress bar.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from extract import backbones, store
from extract.scan import Scan


@dataclass(frozen=True)
class Settings:
    """What decides the features: equal settings on an equal folder give equal rows."""

    backbone: str
    weights: str  # imagenet, random, or a path to a weights file
    pooling: str
    input_size: int
    dtype: str = "float32"

    def attrs(self, scan: Scan) -> dict[str, Any]:
        return {
            "backbone": self.backbone,
            "weights": backbones.weights_identity(self.weights),
            "pooling": self.pooling,
            "input_size": self.input_size,
            "preprocessing": backbones.preprocessing_name(self.backbone),
            "dtype": self.dtype,
            "dataset_fingerprint": scan.fingerprint,
        }


@dataclass(frozen=True)
class Outcome:
    """What one run did, for the summary line."""

    path: Path
    action: str  # reused, resumed, extracted
    written: int  # rows in the file
    skipped: list[str]
    feature_dim: int
    seconds: float
    computed: int = 0  # rows computed by this run (a resume adds to earlier rows)

    def summary(self) -> str:
        size_mb = self.path.stat().st_size / 1e6
        # The rate counts this run's rows only; a reused file has none to report.
        rate = "" if self.action == "reused" else (
            f"{self.computed} this run, "
            f"{self.computed / self.seconds if self.seconds > 0 else 0.0:.1f} images/s, ")
        return (
            f"{self.action}: {self.written} images written, {len(self.skipped)} skipped, "
            f"{self.feature_dim} features, {self.seconds:.1f} s, {rate}"
            f"{self.path} ({size_mb:.1f} MB)"
        )


def existing_state(path: Path, wanted: dict[str, Any]) -> str:
    """'complete' or 'partial' when `path` matches the wanted settings, else 'stale'."""
    if not path.exists():
        return "missing"
    try:
        attrs = store.read_attrs(path)
    except store.FeatureFileError:
        return "stale"  # unreadable (e.g. killed while creating): start over
    if attrs.get("format_version") != store.FORMAT_VERSION:
        return "stale"
    if any(attrs.get(key) != wanted[key] for key in store.SETTINGS_KEYS):
        return "stale"
    return "complete" if attrs.get("complete") else "partial"


def reuse(output: Path, started: float, log: Callable[[str], None]) -> Outcome:
    """The outcome of finding `output` complete for these images and settings."""
    done = store.read_attrs(output)
    log(f"{output}: features for these images and settings exist; reusing (--force redoes)")
    return Outcome(output, "reused", int(done["n_written"]), store.read_skipped(output),
                   int(done["feature_dim"]), time.perf_counter() - started)


def run(
    scan: Scan,
    settings: Settings,
    output: Path,
    *,
    batch_size: int = 32,
    buffer_size: int = 1000,
    compression: str | None = None,
    force: bool = False,
    dataset_name: str = "",
    log: Callable[[str], None] = print,
    model: Any = None,
    progress: bool = True,
) -> Outcome:
    """Extract (or reuse, or resume) the features of `scan` into `output`.

    `model` is a backbone already built for `settings` (a cluster worker builds it once
    for all its shards); `progress` False hides the bar (the client shows one instead).
    """
    started = time.perf_counter()
    attrs = settings.attrs(scan)
    store.check_unlocked(output)  # before reading a file another extract may be writing
    state = "missing" if force else existing_state(output, attrs)
    if state == "complete":
        return reuse(output, started, log)

    if model is None:
        model = build_model(settings)  # TensorFlow loads only when there is work to do
    feature_dim = int(model.output_shape[-1])
    if state == "partial":
        writer = store.FeatureWriter.resume(output, buffer_size=buffer_size)
        log(f"{output}: resuming after {writer.n_scanned} of {len(scan)} images")
        action = "resumed"
    else:
        if state == "stale":
            log(f"{output}: dataset or settings changed; extracting anew")
        writer = store.FeatureWriter.create(
            output,
            feature_dim=feature_dim,
            label_names=scan.label_names,
            attrs={**attrs, "dataset": dataset_name, "dataset_root": str(scan.root),
                   "n_images": len(scan), "tensorflow_version": _tf_version()},
            dtype=settings.dtype,
            buffer_size=buffer_size,
            compression=compression,
        )
        action = "extracted"
    rows_before = writer.n_written
    with writer:
        stream_into(writer, scan, model, input_size=settings.input_size,
                    batch_size=batch_size, backbone=settings.backbone, progress=progress)
        writer.finish()
    return Outcome(output, action, writer.n_written, store.read_skipped(output), feature_dim,
                   time.perf_counter() - started, computed=writer.n_written - rows_before)


def stream_into(
    writer: store.FeatureWriter,
    scan: Scan,
    model: Any,
    *,
    input_size: int,
    batch_size: int,
    backbone: str,
    progress: bool = True,
) -> None:
    """Feed the images `writer` has not seen yet through `model`, in order, into `writer`.

    The reader drops unreadable files; each batch carries file indices, so a gap in
    them is an unreadable file, recorded as skipped in its place in the order.
    """
    from extract import pipeline

    start = writer.n_scanned
    files = scan.absolute(start)
    batches = pipeline.feature_batches(
        files, model, size=input_size, batch_size=batch_size,
        preprocess=backbones.preprocess_function(backbone),
    )
    expected = 0  # next index into `files` not yet written or skipped
    with tqdm(total=len(files), unit="img", desc=backbone, dynamic_ncols=True,
              disable=not progress) as bar:
        for indices, features in batches:
            for index, row in zip(indices.tolist(), features):
                for missing in range(expected, index):
                    writer.skip(scan.paths[start + missing])
                writer.add(row, scan.labels[start + index], scan.paths[start + index])
                expected = index + 1
            bar.update(expected - bar.n)
        for missing in range(expected, len(files)):
            writer.skip(scan.paths[start + missing])
        bar.update(len(files) - bar.n)


def build_model(settings: Settings) -> Any:
    """The backbone these settings describe, as a Keras model."""
    return backbones.build(settings.backbone, weights=settings.weights,
                           pooling=settings.pooling, input_size=settings.input_size)


def _tf_version() -> str:
    import tensorflow as tf

    return tf.__version__
