"""The GPU path, proven on a lent NVIDIA machine: one prepared script, under 8 minutes.

    python -m bench.gpu            fresh NVIDIA machine: pip-installs tensorflow[and-cuda]
                                   and this project into the running Python, then measures
    python -m bench.gpu --smoke    any CPU, nothing installed: the same steps on a few
                                   small images (tests run it, so the script stays working)

Steps: a folder of at least 5,000 JPEGs (flowers17 repeated by symlinks; synthetic
photos where ../shared/data is absent); resnet50 and vgg16 at float32 and float16 and
efficientnet_lite0 at float32 on the tensorflow engine, each timed as the pure forward
pass on batches in memory and end to end (reader + mapper), with nvidia-smi's GPU
utilisation sampled during each; then the real `extract` command once, and one
`classify --model xgb` fit on its file on the GPU (device=cuda) beside the same fit on
the CPU. Smoke mode runs float16 through Keras mixed precision on the CPU.

Only the standard library is imported before the install step.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = (("resnet50", "float32"), ("resnet50", "float16"), ("vgg16", "float32"),
        ("vgg16", "float16"), ("efficientnet_lite0", "float32"))
PHOTOS = 5440  # flowers17 four times over
SMOKE_PHOTOS, SMOKE_CLASSES = 24, 4  # enough per class for classify's split
FORWARD_BATCHES = 20
TIME_LIMIT_S = 8 * 60


def install() -> None:
    """tensorflow with its CUDA libraries, and this project (editable), into this Python."""
    command = [sys.executable, "-m", "pip", "install", "--quiet",
               "tensorflow[and-cuda]>=2.16,<2.22", "-e", str(ROOT)]
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True)


def photo_folder(dest: Path, n: int, classes: int = 17) -> Path:
    """dest/<class>/*.jpg, n photos of the first `classes` of flowers17's 17, repeated
    (or synthetic where flowers17 is absent)."""
    from bench.photos import SHARED_JPG

    if SHARED_JPG.is_dir():
        originals = sorted(SHARED_JPG.glob("image_*.jpg"))
    else:
        originals = synthetic_photos(dest.parent / "synthetic", 170)
    per_class = len(originals) // 17  # originals are in class order, 17 classes
    for i in range(n):
        label, k = i % classes, i // classes  # classes take turns
        source = originals[label * per_class + k % per_class]
        folder = dest / f"class_{label:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{source.stem}_{k // per_class}.jpg").symlink_to(source)
    return dest


def synthetic_photos(dest: Path, n: int) -> list[Path]:
    """n smooth 500x375 JPEGs with noise, in 17 colour classes (no data set needed)."""
    import numpy as np
    from PIL import Image

    dest.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:375, 0:500]
    paths = []
    for i in range(n):
        hue = (i * 17 // n) / 17
        rgb = np.stack([255 * hue + 0 * x, 255 * x / 500, 255 * y / 375], -1)
        rgb = np.clip(rgb + rng.normal(0, 20, rgb.shape), 0, 255).astype(np.uint8)
        paths.append(dest / f"image_{i:04d}.jpg")
        Image.fromarray(rgb).save(paths[-1], quality=90)
    return paths


@contextmanager
def gpu_utilisation() -> Iterator[list[float]]:
    """nvidia-smi's utilisation (%) of the first GPU, sampled every 200 ms while the block
    runs, into the list it yields (left empty without nvidia-smi: smoke mode on a CPU)."""
    samples: list[float] = []
    try:
        process = subprocess.Popen(
            ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
             "-lms", "200"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    except OSError:
        yield samples
        return

    def read() -> None:
        for line in process.stdout:
            value = line.split(",")[0].strip()
            if value.replace(".", "", 1).isdigit():
                samples.append(float(value))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield samples
    finally:
        process.terminate()
        process.wait()
        reader.join(timeout=2)


def mean_use(samples: list[float]) -> str:
    return f"{sum(samples) / len(samples):.0f}%" if samples else "n/a"


def measure(files: list[str], name: str, precision: str, smoke: bool, batch: int) -> dict:
    """Forward and end-to-end img/s of one backbone at one precision, with GPU use."""
    from bench.extraction import end_to_end, forward_rate, preloaded, weights_for
    from extract import mapper as engines
    from extract.backbones import registry
    from extract.settings import Settings

    spec = registry.get_spec(name)
    size = 32 if smoke else spec.input_size
    settings = Settings(name, "random" if smoke else weights_for(name), spec.pooling, size,
                        engine="tensorflow", precision=precision)
    if smoke and precision != "float32":
        # No GPU here: the mixed-precision model runs on the CPU (build_mapper refuses it).
        mapper = engines.TensorFlowMapper(engines.keras_model(settings, precision), precision)
    else:
        mapper = engines.build_mapper(settings)
    batches = preloaded(files[: FORWARD_BATCHES * batch], name, size, batch)
    with gpu_utilisation() as forward_use:
        forward = forward_rate(mapper, batches)
    del batches
    threads = engines.reader_threads(mapper, files, size)
    end_to_end(mapper, files[:batch], name, size, batch, threads)
    with gpu_utilisation() as e2e_use:
        e2e, _, _ = end_to_end(mapper, files, name, size, batch, threads)
    return {"backbone": name, "precision": precision, "device": mapper.attrs()["device"],
            "images": len(files), "batch": batch, "reader_threads": threads,
            "forward_img_s": forward, "gpu_use_forward": mean_use(forward_use),
            "e2e_img_s": e2e, "gpu_use_e2e": mean_use(e2e_use), "e2e_vs_forward": e2e / forward}


def timed(command: list[str], env: dict[str, str] | None = None) -> float:
    """Seconds one child process takes; its output is shown when it fails."""
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-1500:]}"
                         f"{done.stderr[-1500:]}")
    return time.perf_counter() - started


def extract_and_classify(photos: Path, tmp: Path, smoke: bool, n: int) -> list[dict]:
    """The `extract` command once, then `classify --model xgb` on the GPU and on the CPU."""
    bin_dir = Path(sys.executable).parent
    features = tmp / "features.h5"
    backbone = ["--backbone", "vgg16", "--weights", "random", "--image-size", "32"] if smoke \
        else ["--backbone", "efficientnet_lite0"]
    seconds = timed([str(bin_dir / "extract"), "--dataset", str(photos), *backbone,
                     "--output", str(features)])
    rows = [{"step": f"extract ({backbone[1]}, the command)", "device": "auto",
             "seconds": seconds, "img_s": n / seconds}]
    no_gpu = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    for device, env in (("cuda", None), ("cpu", no_gpu)):
        command = [str(bin_dir / "classify"), "--features", str(features), "--model", "xgb",
                   "--outputs", str(tmp / f"outputs-{device}")]
        from common.hardware import gpu_count

        label = device if device == "cpu" or gpu_count() else "cpu (no GPU visible)"
        rows.append({"step": "classify --model xgb (one fit)", "device": label,
                     "seconds": timed(command, env)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true",
                        help="CPU, no install, a few small images: checks the script works")
    parser.add_argument("--no-install", action="store_true",
                        help="skip the pip install (already done)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="[default: 64; smoke mode 8]")
    args = parser.parse_args()
    started = time.perf_counter()
    if not (args.smoke or args.no_install):
        install()
        # A fresh interpreter imports what was just installed.
        os.execv(sys.executable, [sys.executable, "-m", "bench.gpu", "--no-install",
                                  *sys.argv[1:]])
    from bench.report import emit
    from common.hardware import gpu_count

    if not args.smoke and gpu_count() == 0:
        raise SystemExit("bench.gpu: nvidia-smi lists no GPU; on a CPU run --smoke")
    batch = args.batch_size or (8 if args.smoke else 64)
    n = SMOKE_PHOTOS if args.smoke else PHOTOS
    with tempfile.TemporaryDirectory() as tmp:
        photos = photo_folder(Path(tmp) / "photos", n, SMOKE_CLASSES if args.smoke else 17)
        files = sorted(str(p) for p in photos.rglob("*.jpg"))
        rows = []
        for name, precision in RUNS:
            rows.append(measure(files, name, precision, args.smoke, batch))
            print(f"{name} {precision}: {rows[-1]['e2e_img_s']:.0f} img/s end to end",
                  flush=True)
        steps = extract_and_classify(photos, Path(tmp), args.smoke, n)
    total = time.perf_counter() - started
    mode = "smoke (CPU, 32x32, random weights)" if args.smoke else "GPU"
    emit("gpu-smoke" if args.smoke else "gpu", {"rows": rows, "steps": steps,
                                                 "total_s": total}, rows,
         note=f"{mode}, {n} JPEGs, batch {batch}")
    emit("gpu-smoke-steps" if args.smoke else "gpu-steps", {"rows": steps}, steps)
    print(f"bench.gpu done in {total:.0f} s (limit {TIME_LIMIT_S} s)")
    if total > TIME_LIMIT_S and not args.smoke:
        raise SystemExit(f"bench.gpu took {total:.0f} s, over its {TIME_LIMIT_S} s budget")


if __name__ == "__main__":
    main()
