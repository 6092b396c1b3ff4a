"""Memory: peak resident memory of `classify` on a full-size feature file.

The full size is VGG16 flatten features of Caltech-101: 8,677 x 25,088 float32 (870 MB),
101 classes; the budget is 4 GB with --jobs -1 on 2 cores. A synthetic file of that
shape (class means + ReLU noise, written block by block with the real FeatureFileWriter) is
made once and reused; `classify` runs on it in a subprocess while /proc is sampled every
0.2 s for the whole process tree (the command and its joblib workers).

    .venv/bin/python -m bench.classify_memory [--quick] [--scale] [--grid C=0.01,1]

Two tree figures: the sum of Rss counts pages shared between processes (the memory-mapped
training part) once per process, an upper bound; the sum of Pss divides shared pages
among their users: what the tree occupies. getrusage(RUSAGE_CHILDREN) gives only the
largest single process.
"""

from __future__ import annotations

import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np

from bench.report import emit
from extract.consolidate import FeatureFileWriter
from extract.featurefile import FeatureFileError, read_attrs

FULL = {"rows": 8677, "dims": 25088, "classes": 101, "grids": ("C",)}
QUICK = {"rows": 2000, "dims": 4096, "classes": 20, "grids": ("C=0.01,1",)}
# Class-mean scale at full width (~0.96 test accuracy: separable, not trivially); narrower
# files get a proportionally stronger signal, so the class distances stay the same.
SIGNAL = 0.12
SAMPLE_SECONDS = 0.2


def write_synthetic(
    path: Path, rows: int, dims: int, classes: int, signal: float | None = None
) -> None:
    """ReLU-like features: sparse non-negative class means (scale `signal`, by default
    SIGNAL's class distances at this width) plus unit noise, clipped at 0."""
    rng = np.random.default_rng(0)
    if signal is None:
        signal = SIGNAL * (FULL["dims"] / dims) ** 0.5
    means = np.maximum(rng.standard_normal((classes, dims), dtype=np.float32), 0) * signal
    labels = np.arange(rows) % classes
    names = [f"class_{c:03d}" for c in range(classes)]
    writer = FeatureFileWriter(
        path,
        feature_dim=dims,
        label_names=names,
        attrs={
            "backbone": "synthetic",
            "weights": "random",
            "pooling": "flatten",
            "input_size": 224,
            "preprocessing": "none",
            "dataset_fingerprint": f"synthetic-{rows}-{dims}-{classes}-{signal:.4f}",
        },
    )
    block = 500
    for start in range(0, rows, block):
        y = labels[start : start + block]
        X = rng.standard_normal((len(y), dims), dtype=np.float32)
        X += means[y]
        np.maximum(X, 0, out=X)
        for offset, (row, label) in enumerate(zip(X, y)):
            writer.add(row, int(label), f"{names[label]}/{start + offset:05d}.jpg")
    writer.finish()


def tree_pids(root: int) -> list[int]:
    """`root` and all its descendants, from the parent ids in /proc/*/stat."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(children.get(pid, []))
    return pids


def memory_kb(pid: int) -> tuple[int, int]:
    """(Rss, Pss) of one process in kB; zeros when it has just exited."""
    rss = pss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


@click.command()
@click.option("--quick", is_flag=True, help="2,000 x 4,096, 20 classes, two C values.")
@click.option("--model", default="logreg", show_default=True, help="classify --model.")
@click.option(
    "--grid",
    "grids",
    multiple=True,
    help="classify --grid, repeatable [default: C (quick: C=0.01,1)]; 'none' fits once.",
)
@click.option("--scale/--no-scale", default=False, show_default=True, help="classify --scale.")
@click.option("--jobs", default=-1, show_default=True, help="classify --jobs.")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(tempfile.gettempdir()) / "offtheshelf-bench",
    show_default=True,
    help="Where the synthetic file (kept for the next run) and classify's outputs go.",
)
def main(
    quick: bool, model: str, grids: tuple[str, ...], scale: bool, jobs: int, workdir: Path
) -> None:
    """Peak memory, wall time and accuracy of one `classify` run on a full-size file."""
    size = QUICK if quick else FULL
    rows, dims, classes = size["rows"], size["dims"], size["classes"]
    grids = grids or size["grids"]
    features = workdir / "features" / f"synthetic-{rows}x{dims}-{classes}.h5"
    try:
        reusable = bool(read_attrs(features).get("complete"))
    except FeatureFileError:
        reusable = False
    if not reusable:
        click.echo(f"writing {features} ({rows * dims * 4 / 1e9:.2f} GB of float32)...")
        write_synthetic(features, rows, dims, classes)

    outputs = workdir / "outputs"
    arguments = ["--features", str(features), "--outputs", str(outputs), "--model", model]
    arguments += ["--jobs", str(jobs), "--scale" if scale else "--no-scale"]
    for grid in grids:
        if grid.lower() != "none":
            arguments += ["--grid", grid]
    log = workdir / "classify.log"
    click.echo(f"running: classify {' '.join(arguments)}  (output in {log})")
    peak_rss = peak_pss = peak_processes = 0
    start = time.perf_counter()
    with log.open("w") as output:
        child = subprocess.Popen(
            [sys.executable, "-m", "classify", *arguments], stdout=output, stderr=subprocess.STDOUT
        )
        while child.poll() is None:
            sizes = [memory_kb(pid) for pid in tree_pids(child.pid)]
            peak_rss = max(peak_rss, sum(rss for rss, _ in sizes))
            peak_pss = max(peak_pss, sum(pss for _, pss in sizes))
            peak_processes = max(peak_processes, len(sizes))
            time.sleep(SAMPLE_SECONDS)
    wall = time.perf_counter() - start
    if child.returncode:
        raise click.ClickException(f"classify failed ({child.returncode}); see {log}")
    largest_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss

    with (outputs / "results.csv").open(newline="") as handle:
        report = Path(list(csv.DictReader(handle))[-1]["report"])
    metrics = json.loads((report / "metrics.json").read_text())
    row = {
        "shape": f"{rows}x{dims}",
        "classes": classes,
        "model": model + ("+scale" if scale else ""),
        "grid": " ".join(grids),
        "jobs": jobs,
        "tree_rss_mb": peak_rss / 1024,
        "tree_pss_mb": peak_pss / 1024,
        "largest_process_mb": largest_kb / 1024,
        "processes": peak_processes,
        "wall_s": wall,
        "accuracy": metrics["accuracy"],
    }
    figures = {
        "command": "classify " + " ".join(arguments),
        "feature_bytes": rows * dims * 4,
        **row,
        "best_params": metrics["best_params"],
        "cv_score": metrics["cv_score"],
        "phase_seconds": metrics["timings"],
    }
    emit("classify_memory", figures, [row], note="peak over the process tree, sampled /proc")


if __name__ == "__main__":
    main()
