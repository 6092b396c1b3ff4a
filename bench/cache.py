"""The feature cache's costs: consolidating parts into the final file, per GB; an
incremental update (a few images added to many) against consolidating everything; and
the whole engine (plan, shards, part files, consolidation) against the bare reader and
mapper loop into memory, on real photos with the same mapper, side by side.

Parts of synthetic VGG16-flatten-shaped rows (25,088 float32, ReLU-sparse) are written
through the real PartWriter, then `consolidate` writes the final file from them, as
extract does at the end of every run. The update copies the rows of unchanged images
from that file and takes the new rows from one small part.

    .venv/bin/python -m bench.cache [--quick]
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import click

import common.quiet  # noqa: F401 - first: keeps native log lines off the terminal
from bench.report import emit
from bench.storage import relu_features
from extract import parts
from extract.consolidate import consolidate, reusable_rows
from extract.plan import Plan, shards

DIMS = 25088
SHARD = 384


def _plan(root: Path, n: int) -> Plan:
    paths = [f"c{i % 2}/img_{i:06d}.jpg" for i in range(n)]
    return Plan(root, paths, [i % 2 for i in range(n)], ["c0", "c1"],
                [(1000 + i, 7) for i in range(n)], f"synthetic-{n}")


def _write_parts(the_plan: Plan, todo: list[int], where: Path) -> list:
    planned = shards(the_plan, todo, identity="bench", batch_size=32, shard_size=SHARD)
    done = []
    for shard in planned:
        writer = parts.PartWriter(where / shard.name, feature_dim=DIMS, dtype="float32",
                                  buffer_size=1000, attrs={"shard_key": shard.key})
        for path, row in zip(shard.paths, relu_features(len(shard.paths), DIMS, seed=shard.rows[0])):
            writer.add(row, path)
        writer.finish()
        done.append((shard, where / shard.name))
    return done


def _consolidate(output: Path, the_plan: Plan, done: list, reused) -> float:
    started = time.perf_counter()
    consolidate(output, the_plan, done, reused, feature_dim=DIMS,
                attrs={"dtype": "float32"}, buffer_size=1000, compression=None)
    return time.perf_counter() - started


def engine_overhead(photos: int, engine: str) -> list[dict]:
    """efficientnet_lite0 on flowers17: rows into memory, then the same mapper through
    runner.run into a feature file (each after a warm-up), rates side by side."""
    from bench.photos import flowers_subset
    from extract import mapper as engines
    from extract import shard
    from extract.distributor import Sequential
    from extract.extraction import run as extract_run
    from extract.scan import scan
    from extract.settings import RunOptions, Settings

    settings = Settings("efficientnet_lite0", "imagenet", "avg", 224, engine=engine)
    mapper = engines.build_mapper(settings)
    rows = []
    with tempfile.TemporaryDirectory(dir="outputs") as tmp:
        images = scan(flowers_subset(photos, Path(tmp) / "flowers"))
        files = images.absolute()

        def stream() -> None:
            for _ in shard.rows(files, mapper, backbone=settings.backbone,
                                       input_size=224, batch_size=32):
                pass

        def engine_run() -> None:
            extract_run(images, settings, Path(tmp) / "features.h5",
                        options=RunOptions(force=True), distributor=Sequential(mapper),
                        log=lambda _: None, progress=False)

        shard.reader_threads(mapper, files, 224)  # measured once, outside the timing
        for _ in shard.rows(files[:32], mapper, backbone=settings.backbone,
                                   input_size=224, batch_size=32):
            pass  # a warm-up batch (the graph and the reader's first start)
        for label, work in (("reader + mapper into memory", stream),
                            ("runner.run: shards, parts, file", engine_run),
                            ("reader + mapper into memory (again)", stream)):
            started = time.perf_counter()
            work()
            seconds = time.perf_counter() - started
            rows.append({"step": f"{engine}: {label}", "images": photos,
                         "seconds": seconds, "img_s": photos / seconds})
    memory = (rows[0]["img_s"] + rows[2]["img_s"]) / 2
    rows[1]["vs_memory"] = rows[1]["img_s"] / memory
    return rows


def run(n: int, added: int) -> dict:
    os.makedirs("outputs", exist_ok=True)
    with tempfile.TemporaryDirectory(dir="outputs") as tmp:
        tmp_path = Path(tmp)
        the_plan = _plan(tmp_path, n)
        done = _write_parts(the_plan, list(range(n)), tmp_path / "parts")
        output = tmp_path / "features.h5"
        full = _consolidate(output, the_plan, done, None)
        gb = output.stat().st_size / 1e9
        # The same folder with `added` more images: only they are computed.
        grown = _plan(tmp_path, n + added)
        reused = reusable_rows(output, grown)
        new = [i for i in range(len(grown)) if i not in reused.rows]
        extra = _write_parts(grown, new, tmp_path / "parts2")
        update = _consolidate(tmp_path / "grown.h5", grown, extra, reused)
    rows = [
        {"step": f"consolidate {n} rows", "GB": gb, "seconds": full,
         "seconds_per_GB": full / gb},
        {"step": f"update: +{added} images to {n}", "GB": gb * (n + added) / n,
         "seconds": update, "seconds_per_GB": update / (gb * (n + added) / n)},
    ]
    return {"rows_before": n, "added": added, "feature_dim": DIMS, "results": rows}


@click.command()
@click.option("--quick", is_flag=True, help="A smaller file (under a minute).")
def main(quick: bool) -> None:
    """Consolidation seconds per GB of features, and an incremental update."""
    figures = run(2000 if quick else 8000, 50)
    emit("cache", figures, figures["results"],
         note="25,088-wide float32 rows; reads of fresh parts may come from the page cache")
    photos = 160 if quick else 1360
    overhead = [row for engine in ("tensorflow", "openvino")
                for row in engine_overhead(photos, engine)]
    emit("cache_engine", {"rows": overhead}, overhead,
         note=f"efficientnet_lite0, ImageNet weights, {photos} flowers17 photos, batch 32; "
              "vs_memory: the engine's rate over the mean of the two in-memory runs")


if __name__ == "__main__":
    main()
