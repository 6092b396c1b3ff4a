"""Storage: the feature file against plain sequential I/O of the same bytes.

Writes N x D float32 features three ways through the real FeatureFileWriter (no
compression, lzf, gzip) and once as one plain binary file, then reads each back
(read_features against np.fromfile), all in one process on the same disk. Features
are synthetic but shaped like the real ones: non-negative, ReLU-sparse.

    .venv/bin/python -m bench.storage [--quick]
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import click
import numpy as np

from bench.report import emit
from extract.consolidate import FeatureFileWriter
from extract.featurefile import read_features

COMPRESSIONS = (None, "lzf", "gzip")


def relu_features(rows: int, dims: int, seed: int = 0) -> np.ndarray:
    """Roughly the sparsity of VGG16 flatten features: most entries exactly zero."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, dims), dtype=np.float32) - 1.0
    return np.maximum(x, 0, out=x)


def _write_h5(path: Path, X: np.ndarray, compression: str | None) -> float:
    started = time.perf_counter()
    writer = FeatureFileWriter(path, feature_dim=X.shape[1], label_names=["a", "b"],
                                  attrs={}, compression=compression)
    for i, row in enumerate(X):
        writer.add(row, i % 2, f"{'ab'[i % 2]}/{i}.jpg")
    writer.finish()
    os.sync()
    return time.perf_counter() - started


def _write_raw(path: Path, X: np.ndarray) -> float:
    started = time.perf_counter()
    with open(path, "wb") as f:
        f.writelines(X[block : block + 1000].tobytes() for block in range(0, len(X), 1000))
    os.sync()
    return time.perf_counter() - started


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def run(rows: int, dims: int) -> dict:
    X = relu_features(rows, dims)
    mb = X.nbytes / 1e6
    results = []
    with tempfile.TemporaryDirectory(dir="outputs") as tmp:
        raw = Path(tmp) / "raw.bin"
        raw_write = _write_raw(raw, X)
        raw_read = _timed(lambda: np.fromfile(raw, dtype=np.float32))
        results.append({"format": "plain binary", "write_MBps": mb / raw_write,
                        "read_MBps": mb / raw_read, "size_MB": raw.stat().st_size / 1e6})
        for compression in COMPRESSIONS:
            path = Path(tmp) / f"{compression}.h5"
            write = _write_h5(path, X, compression)
            read = _timed(lambda p=path: read_features(p))
            results.append({
                "format": f"hdf5 {compression or 'none'}",
                "write_MBps": mb / write, "read_MBps": mb / read,
                "size_MB": path.stat().st_size / 1e6,
                "write_ratio_vs_plain": raw_write / write,
                "read_ratio_vs_plain": raw_read / read,
            })
    return {"rows": rows, "dims": dims, "data_MB": mb,
            "zero_fraction": float((X == 0).mean()), "results": results}


@click.command()
@click.option("--quick", is_flag=True, help="A smaller matrix (under a minute).")
def main(quick: bool) -> None:
    """HDF5 feature-file throughput and size against plain sequential I/O."""
    os.makedirs("outputs", exist_ok=True)
    figures = run(500 if quick else 2000, 25088)
    emit("storage", figures, figures["results"],
         note=f"{figures['rows']} x {figures['dims']} float32 ({figures['data_MB']:.0f} MB), "
              f"{figures['zero_fraction']:.0%} zeros; reads may come from the page cache")


if __name__ == "__main__":
    main()
