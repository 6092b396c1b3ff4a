"""Extraction speed per engine and precision, against the forward pass and today's path.

For each backbone, in one process, at one batch size, on flowers17 JPEGs:
  forward   the mapper alone on preprocessed batches already in memory (its ceiling),
            timed before and after the end-to-end run and averaged (the shared
            machine's speed drifts over minutes)
  e2e       JPEG files to feature rows: the reader (tf.data decode, resize,
            preprocess, prefetch; threads from the measured balance) feeding the mapper
  today     the TensorFlow path before engines: TensorFlow fp32 with the fixed
            max(1, cores // 4) decoding threads; every speed-up is e2e over today's e2e
Engines: TensorFlow fp32 (the reference), OpenVINO f32, OpenVINO bf16 (where the CPU
runs bf16); for efficientnet_lite0 also the same network exported to ONNX by tf2onnx and
run as a model file (`--backbone lite0.onnx`) on OpenVINO, against the native Lite0
lines (`vs_native`: the ONNX forward rate over the native one, and the native CPU time
per image over the ONNX one, both timed taking turns on the same batches). Then the accuracy cost of bf16 (logreg on all 1,360 flowers17 photos with
efficientnet_lite0, the same split for f32 and bf16), and a decode table for
12-megapixel photos (synthetic 4000x3000 JPEGs).

    .venv/bin/python -m bench.extraction [--quick] [--images N] [--backbone NAME ...]
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np

import common.quiet  # noqa: F401 - first: keeps native log lines off the terminal
from bench.photos import flowers_subset
from bench.report import emit
from common import hardware
from extract import mapper as engines
from extract.backbones import model_file, registry
from extract.scan import scan
from extract.settings import Settings

BACKBONES = ("vgg16", "resnet50", "efficientnet_lite0", "efficientnet_lite1",
             "efficientnet_lite2")
# Photos per backbone: several seconds of the fastest engine each, so that the first
# batch, decoded before the model has anything to overlap it with, weighs little.
PHOTOS = {"vgg16": 160, "resnet50": 480, "efficientnet_lite0": 1360}
QUICK_PHOTOS = 64
FORWARD_IMAGES = 480  # in-memory batches for the forward pass (at most)
LARGE_PHOTOS = 48
ACCURACY_MIN_PHOTOS = 340
ONNX_OF = "efficientnet_lite0"  # also measured as an exported ONNX model file
LITE_SCALING = "mean=127,127,127;std=128,128,128"  # the Lite port's (x - 127) / 128


@dataclass(frozen=True)
class Run:
    """One line of the table: an engine at a precision, with its reader threads."""

    label: str
    engine: str
    precision: str
    today: bool = False  # the fixed reader threads from before engines
    onnx: bool = False  # the backbone exported to ONNX, run as a model file


def weights_for(name: str) -> str:
    """ImageNet for the EfficientNet-Lites (their weights come with packages), random for the
    others, whose ImageNet weights need a download (speed is the same either way)."""
    return "imagenet" if name.startswith("efficientnet_lite") else "random"


def runs() -> list[Run]:
    """Today's path first, then every engine and precision this machine runs."""
    lines = [Run("today: tensorflow fp32", "tensorflow", "float32", today=True),
             Run("tensorflow fp32", "tensorflow", "float32"),
             Run("openvino f32", "openvino", "float32")]
    try:
        engines.check("openvino", "bfloat16")
        lines.append(Run("openvino bf16", "openvino", "bfloat16"))
    except engines.EngineError as exc:
        print(f"openvino bf16 left out: {exc}")
    return lines


def forward_rate(mapper: engines.Mapper, batches: list) -> float:
    """Images/s of the mapper alone on in-memory batches (after one warm-up batch)."""
    return forward_costs(mapper, batches)[0]


def forward_costs(mapper: engines.Mapper, batches: list) -> tuple[float, float]:
    """Images/s, and CPU milliseconds per image (all threads), of the mapper alone."""
    mapper(batches[0])
    started, cpu = time.perf_counter(), time.process_time()
    for batch in batches:
        mapper(batch)
    images = sum(len(b) for b in batches)
    return (images / (time.perf_counter() - started),
            1000 * (time.process_time() - cpu) / images)


def onnx_runs(name: str, folder: Path) -> tuple[list[Run], Path | None]:
    """The model-file lines of `name` (those of ONNX_OF: one per OpenVINO precision this
    machine runs) and its export to ONNX in `folder` (None without tf2onnx)."""
    if name != ONNX_OF:
        return [], None
    try:
        import tf2onnx
    except ImportError:
        print("the ONNX lines are left out: pip install tf2onnx (a test dependency)")
        return [], None
    import tensorflow as tf

    spec = registry.get_spec(name)
    model = registry.build(name, weights="imagenet", pooling=spec.pooling,
                           input_size=spec.input_size)
    path = folder / "lite0.onnx"
    tf2onnx.convert.from_keras(model, input_signature=(
        tf.TensorSpec((None, spec.input_size, spec.input_size, 3), tf.float32, "images"),),
        opset=17, output_path=str(path))
    return [Run(f"{run.label}, onnx file", run.engine, run.precision, onnx=True)
            for run in runs() if run.engine == "openvino"], path


def settings_for(run: Run, name: str, onnx: Path | None) -> Settings:
    """The built-in backbone's settings, or those of its ONNX export as a model file."""
    spec = registry.get_spec(name)
    if run.onnx:
        return model_file.settings(str(onnx), preprocess=LITE_SCALING, model_output=None,
                                   pooling=None, image_size=None, weights="imagenet",
                                   engine=run.engine, precision=run.precision,
                                   dtype="float32")
    return Settings(name, weights_for(name), spec.pooling, spec.input_size, engine=run.engine,
                    precision=run.precision)


def end_to_end(mapper: engines.Mapper, files: list[str], name: str, size: int,
               batch_size: int, threads: int, preprocessing: str | None = None
               ) -> tuple[float, float, np.ndarray]:
    """Images/s from JPEG files to rows in memory (reader + mapper loop), CPU
    milliseconds per image (all threads), and the rows. `preprocessing`: a model
    file's."""
    from extract import reader

    preprocess = registry.preprocess_function(name, preprocessing)
    rows = np.empty((len(files), mapper.feature_dim), np.float32)
    started, cpu = time.perf_counter(), time.process_time()
    for indices, images in reader.image_batches(files, size=size, batch_size=batch_size,
                                                  preprocess=preprocess, threads=threads):
        rows[indices.numpy()] = mapper(images)
    return (len(files) / (time.perf_counter() - started),
            1000 * (time.process_time() - cpu) / len(files), rows)


def preloaded(files: list[str], name: str, size: int, batch_size: int) -> list:
    """The photos decoded and preprocessed once, kept in memory as batches."""
    from extract import reader

    return [images.numpy() for _, images in reader.image_batches(
        files, size=size, batch_size=batch_size,
        preprocess=registry.preprocess_function(name))]


def measure(name: str, files: list[str], batch_size: int, tmp: Path
            ) -> tuple[list[dict], dict]:
    """The table's lines for one backbone, and each line's rows (by label)."""

    spec = registry.get_spec(name)
    batches = preloaded(files[:FORWARD_IMAGES], name, spec.input_size, batch_size)
    lines, features = [], {}
    exported, onnx = onnx_runs(name, tmp)
    for run in runs() + exported:
        settings = settings_for(run, name, onnx)
        built = time.perf_counter()
        mapper = engines.build_mapper(settings)
        build_s = time.perf_counter() - built
        threads = (max(1, hardware.cores() // 4) if run.today
                   else engines.reader_threads(mapper, files, spec.input_size))
        before, forward_cpu = forward_costs(mapper, batches)
        end_to_end(mapper, files[:batch_size], name, spec.input_size, batch_size, threads,
                   settings.preprocessing)
        e2e, e2e_cpu, features[run.label] = end_to_end(mapper, files, name, spec.input_size,
                                                       batch_size, threads,
                                                       settings.preprocessing)
        forward = (before + forward_rate(mapper, batches)) / 2
        lines.append({"backbone": f"{name} ({spec.pooling})", "engine": run.label,
                      "threads": threads, "images": len(files), "build_s": build_s,
                      "forward_img_s": forward, "e2e_img_s": e2e, "e2e_vs_forward": e2e / forward,
                      # CPU time per image, all threads: steadier than rates on a busy
                      # machine; their ratio is what the reader adds to the model's work.
                      "forward_cpu_ms": forward_cpu, "e2e_cpu_ms": e2e_cpu})
        print(f"{name} {run.label}: forward {forward:.1f} img/s, end to end {e2e:.1f} img/s "
              f"({threads} reader threads)", flush=True)
        del mapper
    today = lines[0]
    for line in lines:
        line["speedup_vs_today"] = line["e2e_img_s"] / today["e2e_img_s"]
        line["cpu_speedup_vs_today"] = today["e2e_cpu_ms"] / line["e2e_cpu_ms"]
    reference = features["tensorflow fp32"]
    for line in lines:
        line["max_abs_diff_vs_tf"] = float(np.abs(features[line["engine"]] - reference).max())
    by_label = {line["engine"]: line for line in lines}
    for run in exported:  # the ONNX file against the native backbone on the same engine
        native = next(r for r in runs() if r.label == run.label.removesuffix(", onnx file"))
        line = by_label[run.label]
        line["forward_vs_native"], line["cpu_vs_native"] = taking_turns(
            engines.build_mapper(settings_for(run, name, onnx)),
            engines.build_mapper(settings_for(native, name, onnx)), batches)
        line["e2e_vs_native"] = line["e2e_img_s"] / by_label[native.label]["e2e_img_s"]
        line["max_rel_diff_vs_native"] = float(
            np.abs(features[run.label] - features[native.label]).max()
            / np.abs(features[native.label]).max())
        print(f"{name} {run.label} over {native.label}, taking turns: forward "
              f"x{line['forward_vs_native']:.3f}, CPU per image x{line['cpu_vs_native']:.3f}; "
              f"features within {line['max_rel_diff_vs_native']:.1e} of the largest",
              flush=True)
    return lines, features


def taking_turns(mine: engines.Mapper, theirs: engines.Mapper, batches: list,
                 rounds: int = 6) -> tuple[float, float]:
    """Two mappers' forward passes over the same batches, taking turns (ABBA...) so that
    the shared machine's drift falls on both alike: (my rate over theirs, their CPU time
    per image over mine), medians of `rounds` passes each."""
    mine(batches[0])
    theirs(batches[0])
    timed: dict[int, list[tuple[float, float]]] = {0: [], 1: []}
    for turn in range(rounds):
        for who in ((0, 1) if turn % 2 == 0 else (1, 0)):
            mapper = (mine, theirs)[who]
            started, cpu = time.perf_counter(), time.process_time()
            for batch in batches:
                mapper(batch)
            timed[who].append((time.perf_counter() - started, time.process_time() - cpu))
    wall = [float(np.median([t[0] for t in timed[who]])) for who in (0, 1)]
    cpu = [float(np.median([t[1] for t in timed[who]])) for who in (0, 1)]
    return wall[1] / wall[0], cpu[1] / cpu[0]


def bf16_accuracy(features: dict[str, np.ndarray], labels: list[int]) -> list[dict]:
    """Logreg test accuracy of f32 and bf16 features on one split, and their cosines."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    f32 = features["openvino f32"]
    train, test = train_test_split(np.arange(len(labels)), test_size=0.25, random_state=42,
                                   stratify=labels)
    y = np.asarray(labels)
    rows = []
    for label, X in features.items():
        if label.startswith("today"):
            continue
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
        model.fit(X[train], y[train])
        cosines = (X * f32).sum(1) / (np.linalg.norm(X, axis=1) * np.linalg.norm(f32, axis=1))
        rows.append({"features": label, "images": len(y), "test": len(test),
                     "logreg_test_accuracy": float(model.score(X[test], y[test])),
                     "median_cosine_to_f32": float(np.median(cosines)),
                     "min_cosine_to_f32": float(cosines.min())})
    return rows


def large_photo(path: Path) -> Path:
    """A 4000x3000 JPEG (about 2 MB): a flowers17 photo enlarged, with sensor-like noise."""
    from PIL import Image

    from bench.photos import SHARED_JPG

    rng = np.random.default_rng(0)
    enlarged = np.asarray(Image.open(SHARED_JPG / "image_0001.jpg").resize((4000, 3000),
                                                                           Image.BICUBIC))
    noisy = enlarged.astype(np.int16) + rng.integers(-6, 7, enlarged.shape)
    Image.fromarray(noisy.clip(0, 255).astype(np.uint8)).save(path, quality=92)
    return path


def decode_rows(tmp: Path, batch_size: int, quick: bool) -> list[dict]:
    """Large photos: one thread at full scale, the reader (DCT-scaled) at 1 and all
    threads, and efficientnet_lite0 on OpenVINO end to end on them."""
    import tensorflow as tf

    from extract import reader

    photo = large_photo(tmp / "large.jpg")
    files = [str(photo)] * (16 if quick else LARGE_PHOTOS)
    data = tf.io.read_file(str(photo))
    full = tf.function(lambda d: tf.image.resize(tf.io.decode_jpeg(d, channels=3), (224, 224)))
    full(data)
    started = time.perf_counter()
    for _ in files[:16]:
        full(data).numpy()
    lines = [{"what": "tf.io.decode_jpeg full scale + resize", "threads": 1,
              "img_s": 16 / (time.perf_counter() - started)}]
    for threads in sorted({1, hardware.cores()}):
        started = time.perf_counter()
        for _ in reader.image_batches(files, size=224, batch_size=batch_size,
                                        preprocess=lambda x: x, threads=threads):
            pass
        lines.append({"what": "reader (DCT-scaled decode + resize)", "threads": threads,
                      "img_s": len(files) / (time.perf_counter() - started)})
    settings = Settings("efficientnet_lite0", "imagenet", "avg", 224, engine="openvino")
    mapper = engines.build_mapper(settings)
    threads = engines.reader_threads(mapper, files, 224)
    end_to_end(mapper, files[:batch_size], "efficientnet_lite0", 224, batch_size, threads)
    rate, _, _ = end_to_end(mapper, files, "efficientnet_lite0", 224, batch_size, threads)
    lines.append({"what": "efficientnet_lite0 openvino f32 end to end", "threads": threads,
                  "img_s": rate})
    return lines


def header() -> str:
    """The CPU, its bf16 hardware, and what OpenVINO makes of it."""
    import openvino as ov

    capabilities = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")

    return (f"CPU: {hardware.cpu_model()}, {hardware.cores()} cores; bf16 hardware: "
            f"{', '.join(hardware.bf16_hardware(hardware.cpu_flags())) or 'none'} (AMX: "
            f"{'yes' if 'amx_bf16' in hardware.cpu_flags() else 'no'}); OpenVINO "
            f"{ov.get_version().split('-')[0]} capabilities: {', '.join(capabilities)}")


@click.command()
@click.option("--quick", is_flag=True, help=f"{QUICK_PHOTOS} photos per backbone.")
@click.option("--images", type=int, help="Photos per backbone [default: PHOTOS].")
@click.option("--batch-size", default=32, show_default=True)
@click.option("--backbone", "names", multiple=True, default=BACKBONES, show_default=True)
def main(quick: bool, images: int | None, batch_size: int, names: tuple[str, ...]) -> None:
    """Forward and end-to-end rates per engine and precision, bf16's accuracy cost, and
    large-photo decoding."""
    print(header())
    lines, accuracy = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            n = images or (QUICK_PHOTOS if quick else PHOTOS.get(name, 160))
            photos = scan(flowers_subset(n, Path(tmp) / f"flowers-{n}"))
            measured, features = measure(name, photos.absolute(), batch_size, Path(tmp))
            lines += measured
            # A test part with a few photos per class; all 1,360 unless --quick/--images.
            if (name == "efficientnet_lite0" and "openvino bf16" in features
                    and len(photos) >= ACCURACY_MIN_PHOTOS):
                accuracy = bf16_accuracy(features, photos.labels)
        decoding = decode_rows(Path(tmp), batch_size, quick)
    note = (f"{header()}; flowers17 JPEGs (about 500x375), batch {batch_size}, "
            "page cache warm")
    emit("extraction", {"rows": lines, "bf16_accuracy": accuracy, "large_photos": decoding},
         lines, note=note)
    if accuracy:
        emit("extraction_bf16_accuracy", {"rows": accuracy}, accuracy,
             note="efficientnet_lite0, ImageNet weights, logreg C=0.1 on standardised "
                  "features, stratified 75/25 split, seed 42")
    emit("extraction_large_photos", {"rows": decoding}, decoding,
         note="synthetic 4000x3000 JPEGs (about 2 MB), 224x224")


if __name__ == "__main__":
    main()
