"""Growth: throughput against batch size, and time and memory against dataset size.

Batch sizes are compared in one process on one model. Dataset sizes run the real
`extract` command in a child process each, whose peak resident memory comes from
wait4: time should grow linearly with the images, memory should stay flat.

    .venv/bin/python -m bench.growth [--quick]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

import common.quiet  # noqa: F401 - first: keeps native log lines off the terminal
from bench.extraction import end_to_end, forward_rate, preloaded, weights_for
from bench.photos import flowers_subset
from bench.report import emit
from extract import mapper as engines
from extract.backbones import registry
from extract.scan import scan
from extract.settings import Settings

BACKBONE = "efficientnet_lite0"


def batch_rows(photos_dir: Path, batch_sizes: tuple[int, ...]) -> list[dict]:
    """Forward and end-to-end rates by batch size, on the engine `--engine auto` picks."""
    spec = registry.get_spec(BACKBONE)
    engine = engines.resolve_engine("auto")
    mapper = engines.build_mapper(Settings(BACKBONE, weights_for(BACKBONE), spec.pooling,
                                           spec.input_size, engine=engine))
    files = scan(photos_dir).absolute()
    threads = engines.reader_threads(mapper, files, spec.input_size)
    rows = []
    for batch in batch_sizes:
        forward = forward_rate(mapper, preloaded(files, BACKBONE, spec.input_size, batch))
        end_to_end(mapper, files[:batch], BACKBONE, spec.input_size, batch, threads)
        e2e, _, _ = end_to_end(mapper, files, BACKBONE, spec.input_size, batch, threads)
        rows.append({"measure": "batch size", "engine": engine, "batch": batch,
                     "images": len(files), "forward_img_s": forward, "e2e_img_s": e2e})
    return rows


def run_extract(photos_dir: Path, out: Path) -> dict:
    """Wall time and peak RSS of one `extract` process, start to exit."""
    command = [sys.executable, "-m", "extract", "--dataset", str(photos_dir),
               "--backbone", BACKBONE, "--weights", weights_for(BACKBONE), "--output", str(out)]
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"extract failed ({status}): {' '.join(command)}")
    return {"seconds": seconds, "peak_rss_MB": usage.ru_maxrss / 1024}


@click.command()
@click.option("--quick", is_flag=True, help="Fewer images and batch sizes.")
def main(quick: bool) -> None:
    """Throughput by batch size; wall time and peak memory by dataset size."""
    sizes = (100, 300) if quick else (100, 1360)
    batch_sizes = (8, 32) if quick else (8, 16, 32, 64)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rows = batch_rows(flowers_subset(96 if quick else 192, tmp / "batches"), batch_sizes)
        for n in sizes:
            figures = run_extract(flowers_subset(n, tmp / f"n{n}"), tmp / f"n{n}.h5")
            rows.append({"measure": "dataset size", "images": n, **figures,
                         "extract_img_s": n / figures["seconds"]})
    small, large = (r for r in rows if r["measure"] == "dataset size")
    summary = {
        "time_ratio": large["seconds"] / small["seconds"],
        "images_ratio": large["images"] / small["images"],
        "memory_ratio": large["peak_rss_MB"] / small["peak_rss_MB"],
        # images/s of the extra images alone: start-up (imports, model) cancels out
        "marginal_img_s": (large["images"] - small["images"])
        / (large["seconds"] - small["seconds"]),
    }
    emit("growth", {"rows": rows, **summary}, rows,
         note=f"{BACKBONE}; {large['images']} vs {small['images']} images: time x"
              f"{summary['time_ratio']:.2f} (images x{summary['images_ratio']:.1f}, "
              f"includes a fixed start-up; the extra images ran at {summary['marginal_img_s']:.0f}/s), "
              f"peak memory x{summary['memory_ratio']:.2f}")


if __name__ == "__main__":
    main()
