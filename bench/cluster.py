"""Scale-out: `extract` in one process against `--cluster local:1` and `local:2`.

All three run the real command as a child process, one after another, on the same
flowers17 photos at 224x224, batch 32, with the shards cut so two workers get equal
work. Wall time counts everything the user waits for (imports, cluster start-up,
model builds, assembly); the rate counts the rows over that wall time. The three files
are compared: the cluster runs must hold the single process's rows, bit for bit.

On 2 cores expect at most 2x from 2 workers, and in fact about 1x: one TensorFlow
process already keeps both cores busy, so a second worker only splits them.

    .venv/bin/python -m bench.cluster [--quick]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np

import common.quiet  # noqa: F401 - first: keeps native log lines off the terminal
from bench.extraction import weights_for
from bench.photos import flowers_subset
from bench.report import emit
from extract.featurefile import read_features

BACKBONE = "efficientnet_lite0"
BATCH = 32


def timed_extract(photos: Path, out: Path, cluster: list[str]) -> float:
    """Seconds of one `extract` child process, start to exit."""
    command = [sys.executable, "-m", "extract", "--dataset", str(photos), "--backbone", BACKBONE,
               "--weights", weights_for(BACKBONE), "--batch-size", str(BATCH),
               "--output", str(out), *cluster]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise click.ClickException(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - started


def reader_rate(photos: Path) -> tuple[float, int]:
    """Images/s of the reader alone (decode, resize, preprocess; no model) and its threads.

    The ceiling of one worker whose model is much faster than these CPUs (a GPU).
    """
    from extract import reader
    from extract.backbones import registry
    from extract.scan import scan

    files = scan(photos).absolute()
    threads = reader.balanced_threads(files, 224, None, on_gpu=True)
    batches = reader.image_batches(files, size=224, batch_size=BATCH, threads=threads,
                                     preprocess=registry.preprocess_function(BACKBONE))
    started = time.perf_counter()
    count = sum(len(indices) for indices, _ in batches)
    return count / (time.perf_counter() - started), threads


@click.command()
@click.option("--quick", is_flag=True, help="Fewer images.")
def main(quick: bool) -> None:
    """One process, then 1 and 2 local Dask workers, on the same photos."""
    n = 128 if quick else 1360
    shard = n // 4  # four shards: two each for two workers
    runs = {"one process": [], "local:1": ["--cluster", "local:1", "--shard-size", str(shard)],
            "local:2": ["--cluster", "local:2", "--shard-size", str(shard)]}
    rows, features = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        photos = flowers_subset(n, Path(tmp) / "photos")
        reader, threads = reader_rate(photos)
        for name, cluster in runs.items():
            out = Path(tmp) / name.replace(":", "") / "out.h5"
            seconds = timed_extract(photos, out, cluster)
            features[name] = read_features(out).X
            rows.append({"run": name, "images": n, "seconds": seconds, "img_s": n / seconds})
    for row in rows:
        row["same_rows_as_one_process"] = bool(
            np.array_equal(features[row["run"]], features["one process"]))
    by_run = {row["run"]: row for row in rows}
    speedup = by_run["local:1"]["seconds"] / by_run["local:2"]["seconds"]
    emit("cluster", {"rows": rows, "speedup_2_over_1_workers": speedup,
                     "per_worker_img_s": by_run["local:1"]["img_s"],
                     "reader_img_s": reader, "reader_threads": threads}, rows,
         note=f"{BACKBONE} 224x224, batch {BATCH}, {n} photos; 2 workers vs 1: x{speedup:.2f}; "
              f"the reader alone: {reader:.0f} img/s on {threads} decoding thread(s)")


if __name__ == "__main__":
    main()
