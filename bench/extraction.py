"""Extraction efficiency: JPEG files on disk to a complete HDF5 file, against the model.

For each backbone, in one process and at one batch size:
  forward   the compiled model on preprocessed tensors already in memory (the ceiling),
            timed before and after extract and averaged
  extract   the real path: tf.data decode/resize/preprocess + model + buffered HDF5 writer
  classic   the hand-written loop of the tutorials: PIL load, stack, model.predict,
            append to h5py per batch
Target: extract / forward >= 0.95 (decoding and writing hide behind the model).
Each of the three is timed after one untimed run of its own on the first batch of
photos, so that the steady states are compared, not first calls (model.predict traces
its graph on its first call; the compiled forward is traced in its own warm-up).

    .venv/bin/python -m bench.extraction [--quick] [--images N] [--backbone NAME ...]
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path

import click
import numpy as np

from bench.photos import flowers_subset
from bench.report import emit
from extract import backbones, store
from extract.runner import stream_into
from extract.scan import Scan, scan

BACKBONES = ("vgg16", "resnet50", "efficientnet_lite0")
# Photos per backbone: about 20 s of forward pass each on 2 cores, so that the first
# batch, decoded before the model has anything to overlap it with, weighs little in a
# throughput figure (160 photos of efficientnet_lite0 took 2 s: 0.83 of forward).
PHOTOS = {"vgg16": 160, "resnet50": 480, "efficientnet_lite0": 1360}
QUICK_PHOTOS = 64


def weights_for(name: str) -> str:
    """ImageNet for efficientnet_lite0 (its weights come with a package), random for the
    others, whose ImageNet weights need a download (speed is the same either way)."""
    return "imagenet" if name == "efficientnet_lite0" else "random"


def forward_rate(model, images: list) -> float:
    """Images/s of the compiled model alone on in-memory batches (after one warm-up)."""
    from extract.pipeline import compiled_forward

    forward = compiled_forward(model)
    forward(images[0]).numpy()
    started = time.perf_counter()
    for batch in images:
        forward(batch).numpy()
    return sum(len(b) for b in images) / (time.perf_counter() - started)


def extract_rate(model, photos: Scan, name: str, size: int, batch_size: int, out: Path) -> float:
    """Images/s of the real extraction path into a complete feature file."""
    started = time.perf_counter()
    writer = store.FeatureWriter.create(out, feature_dim=int(model.output_shape[-1]),
                                        label_names=photos.label_names, attrs={})
    with writer:
        stream_into(writer, photos, model, input_size=size, batch_size=batch_size,
                    backbone=name)
        writer.finish()
    return len(photos) / (time.perf_counter() - started)


def classic_rate(model, photos: Scan, name: str, size: int, batch_size: int, out: Path) -> float:
    """Images/s of the PIL + predict + h5py loop found in transfer-learning tutorials."""
    import h5py
    from PIL import Image

    preprocess = backbones.preprocess_function(name)
    started = time.perf_counter()
    files = photos.absolute()
    with h5py.File(out, "w") as f:
        dim = int(model.output_shape[-1])
        data = f.create_dataset("features", (0, dim), maxshape=(None, dim), dtype="float32")
        for i in range(0, len(files), batch_size):
            batch = np.stack([
                np.asarray(Image.open(p).convert("RGB").resize((size, size)), dtype=np.float32)
                for p in files[i : i + batch_size]
            ])
            features = model.predict(preprocess(batch), verbose=0)
            data.resize(len(data) + len(features), axis=0)
            data[-len(features):] = features
    return len(files) / (time.perf_counter() - started)


def preloaded(photos: Scan, name: str, size: int, batch_size: int) -> list:
    """The photos decoded and preprocessed once, kept in memory as batches."""
    from extract.pipeline import image_batches

    return [images for _, images in image_batches(
        photos.absolute(), size=size, batch_size=batch_size,
        preprocess=backbones.preprocess_function(name))]


def measure(name: str, photos: Scan, warm_up: Scan, batch_size: int, tmp: Path) -> dict:
    size = backbones.get_spec(name).input_size
    pooling = backbones.get_spec(name).pooling
    model = backbones.build(name, weights=weights_for(name), pooling=pooling, input_size=size)
    batches = preloaded(photos, name, size, batch_size)
    forward_before = forward_rate(model, batches)
    extract_rate(model, warm_up, name, size, batch_size, tmp / f"{name}-warm-up.h5")
    extract = extract_rate(model, photos, name, size, batch_size, tmp / f"{name}.h5")
    # The machine's speed drifts over minutes: forward timed on both sides of extract,
    # so that a drift during the run moves the reference as much as the measurement.
    forward = (forward_before + forward_rate(model, batches)) / 2
    del batches
    classic_rate(model, warm_up, name, size, batch_size, tmp / f"{name}-classic-warm-up.h5")
    classic = classic_rate(model, photos, name, size, batch_size, tmp / f"{name}-classic.h5")
    return {"backbone": name, "pooling": pooling, "images": len(photos),
            "batch": batch_size, "forward_img_s": forward, "extract_img_s": extract,
            "classic_img_s": classic, "extract_vs_forward": extract / forward,
            "speedup_vs_classic": extract / classic}


@click.command()
@click.option("--quick", is_flag=True, help=f"{QUICK_PHOTOS} photos per backbone.")
@click.option("--images", type=int, help="Photos per backbone [default: PHOTOS].")
@click.option("--batch-size", default=32, show_default=True)
@click.option("--backbone", "names", multiple=True, default=BACKBONES, show_default=True)
def main(quick: bool, images: int | None, batch_size: int, names: tuple[str, ...]) -> None:
    """End-to-end extraction against pure forward throughput and the classic loop."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            n = images or (QUICK_PHOTOS if quick else PHOTOS.get(name, 160))
            photos = scan(flowers_subset(n, Path(tmp) / f"flowers-{n}"))
            warm_up = replace(photos, paths=photos.paths[:batch_size],
                              labels=photos.labels[:batch_size])
            rows.append(measure(name, photos, warm_up, batch_size, Path(tmp)))
    emit("extraction", {"rows": rows}, rows,
         note=f"flowers17 JPEGs (about 500x375), 224x224 (inception/xception 299), "
              f"batch {batch_size}, page cache warm")


if __name__ == "__main__":
    main()
