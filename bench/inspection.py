"""Inspection at scale: time and peak memory of `inspect` on 10k, 50k and 100k rows.

Synthetic rows shaped like efficientnet_lite0's (1,280 non-negative features, 20
classes, 1 % of the rows near-copies of others), each size inspected by a child process
whose peak resident memory comes from wait4. The neighbour search is blocked, so beyond
the feature matrix itself memory should grow by N x k, not N x N.

    .venv/bin/python -m bench.inspection [--quick] [--cluster local:2]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np

from bench.report import emit
from extract.consolidate import FeatureFileWriter

DIMS = 1280
CLASSES = 20
COPIES = 0.01
CHILD = """
import json, sys
from pathlib import Path
from classify.inspection.run import InspectConfig, run
result = run(InspectConfig(Path(sys.argv[1]), Path(sys.argv[2]),
                           cluster=sys.argv[3] if len(sys.argv) > 3 else None))
print(json.dumps({"timings": result.timings, "counts": result.inspection.counts()}))
"""


def synthetic_file(path: Path, rows: int, seed: int = 0) -> Path:
    """`rows` rows around 20 class centres (ReLU-like, as pooled CNN features are), 1 %
    of them near-copies of another row of their class, written block by block."""
    rng = np.random.default_rng(seed)
    centres = np.abs(rng.normal(size=(CLASSES, DIMS))).astype(np.float32)
    names = [f"class_{c:02d}" for c in range(CLASSES)]
    writer = FeatureFileWriter(path, feature_dim=DIMS, label_names=names, buffer_size=4096,
                               attrs={"backbone": "synthetic", "weights": "imagenet",
                                      "pooling": "avg", "input_size": 224})
    block = 10_000
    for start in range(0, rows, block):
        n = min(block, rows - start)
        y = rng.integers(0, CLASSES, n)
        X = np.maximum(centres[y] + rng.normal(scale=0.9, size=(n, DIMS)), 0).astype(np.float32)
        chosen = rng.choice(n, 2 * int(COPIES * n), replace=False)
        originals, copies = chosen[::2], chosen[1::2]
        X[copies] = X[originals] * rng.uniform(0.97, 1.03, size=(len(copies), DIMS))
        y[copies] = y[originals]
        for i in range(n):
            writer.add(X[i], int(y[i]), f"{names[y[i]]}/{start + i:07d}.jpg")
    writer.finish()
    return path


def inspect_child(features: Path, outputs: Path, cluster: str | None) -> dict:
    """Wall time, peak RSS and phase timings of one inspection in its own process."""
    command = [sys.executable, "-c", CHILD, str(features), str(outputs),
               *([cluster] if cluster else [])]
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert child.stdout is not None
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    if status != 0:
        raise SystemExit(f"inspect failed ({status}) on {features}")
    figures = json.loads(output.strip().splitlines()[-1])
    return {"seconds": time.perf_counter() - started, "peak_rss_MB": usage.ru_maxrss / 1024,
            **{f"{phase}_s": seconds for phase, seconds in figures["timings"].items()},
            "near_duplicates": figures["counts"]["near_duplicate"]}


@click.command()
@click.option("--quick", is_flag=True, help="10k rows only (about a minute on 2 cores).")
@click.option("--cluster", metavar="ADDRESS|local:N",
              help="Also run the neighbour search on Dask, at the smallest size.")
def main(quick: bool, cluster: str | None) -> None:
    """Time and peak memory of inspect by the number of rows."""
    sizes = (10_000,) if quick else (10_000, 50_000, 100_000)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            features = synthetic_file(Path(tmp) / f"synthetic-{n}.h5", n)
            figures = inspect_child(features, Path(tmp) / "outputs", None)
            rows.append({"rows": n, "features_MB": n * DIMS * 4 / 2**20, **figures})
            if cluster and n == sizes[0]:
                rows.append({"rows": n, "cluster": cluster, "features_MB": n * DIMS * 4 / 2**20,
                             **inspect_child(features, Path(tmp) / "outputs", cluster)})
            features.unlink()
    emit("inspection", {"rows": rows}, rows,
         note=f"synthetic {DIMS}-d rows, {CLASSES} classes, {COPIES:.0%} near-copies")


if __name__ == "__main__":
    main()
