"""`classify --cluster`: the same protocol with the features spread over Dask workers.

The client reads and checks the file's header, labels and names (small) and decides
the split and the folds exactly as the local path does; the workers read the feature
rows themselves, block by block, and keep the training and test parts in memory
(persisted) for the whole run. The search (classify.search.on_dask.ClusterSearch) fits
logreg out of core and xgb through XGBoost's Dask interface; both end as ordinary
fitted estimators, so the saved bundle is the same as a local run's and `predict` needs
no cluster.
"""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from classify import fitting, protocol
from classify.config import ExperimentConfig
from classify.models import ModelSpec
from classify.protocol import LabelSplit
from classify.search.dask_logreg import block_futures
from classify.search.on_dask import ClusterSearch, fit_on_cluster
from common.dask_cluster import ClusterError, connect, local_workers
from common.errors import os_error_line
from extract.featurefile import (
    FeatureFileError,
    FeatureHeader,
    nonfinite_error,
    nonfinite_rows,
    read_block,
    read_header,
)

if TYPE_CHECKING:
    import dask.array as da
    from distributed import Client
# What each model is on a cluster (the report's model line).
MODELS = {
    "logreg": "multinomial logistic regression (out-of-core L-BFGS-B on the Dask workers)",
    "xgb": "gradient-boosted trees (XGBoost hist through its Dask interface)",
}
LOGREG_GRID = ("C",)
BLOCK_BYTES = 64 * 1024 * 1024  # most rows one read task returns
BLOCKS_PER_WORKER = 2


def unsupported(spec: ModelSpec, grid: Mapping[str, Any], scale: bool) -> str | None:
    """Why this run cannot go to a cluster, or None when it can (checked before connecting)."""
    if spec.name not in MODELS:
        return f"--cluster supports --model {' or '.join(MODELS)}, not {spec.name}"
    if scale:
        return ("--scale is not supported with --cluster; drop --scale, or run without "
                "--cluster to standardise the features inside each fold")
    if spec.name == "logreg":
        other = sorted(set(grid) - set(LOGREG_GRID))
        if other:
            return f"--cluster: logreg searches {', '.join(LOGREG_GRID)} only, not {', '.join(other)}"
    return None


@dataclass
class ClusterData:
    """The split of one feature file, its rows persisted on the workers."""

    header: FeatureHeader
    labels: LabelSplit
    X_train: da.Array
    y_train: da.Array
    X_test: da.Array


def block_bounds(n_rows: int, n_features: int, n_workers: int) -> list[tuple[int, int]]:
    """File rows cut into read tasks: a few per worker, none above BLOCK_BYTES."""
    most = max(1, BLOCK_BYTES // max(1, 4 * n_features))
    rows = max(1, min(most, math.ceil(n_rows / (BLOCKS_PER_WORKER * max(1, n_workers)))))
    return [(start, min(start + rows, n_rows)) for start in range(0, n_rows, rows)]


def read_slab(path: str, start: int, stop: int) -> np.ndarray:
    """`read_block` on a worker; a file this worker cannot see is refused saying why."""
    if not os.path.exists(path):
        raise FeatureFileError(
            f"{path}: not found on Dask worker {socket.gethostname()}; --cluster needs the "
            "feature file on a filesystem the workers share"
        )
    return read_block(path, start, stop)


def take_rows(block: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The given rows of a block (a worker-side task)."""
    return block[rows]


def _part(slabs: list[Any], bounds: list[tuple[int, int]], rows: np.ndarray, dims: int
          ) -> da.Array:
    """The file rows `rows` (sorted) as a Dask array, one chunk per read task they touch."""
    import dask
    import dask.array as da

    chunks = []
    for slab, (start, stop) in zip(slabs, bounds):
        local = rows[(rows >= start) & (rows < stop)] - start
        if len(local):
            part = dask.delayed(take_rows, pure=True)(slab, local)
            chunks.append(da.from_delayed(part, (len(local), dims), dtype=np.float32))
    return da.concatenate(chunks, axis=0)


def load(
    client: Client, path: Path, test_size: float, seed: int, announce: Callable[[str], None],
    chosen: protocol.Protocol | None = None,
) -> ClusterData:
    """Check the file in the client, split its labels, and have the workers read the rows.

    Each read task reads one contiguous slab of the file once and keeps its training
    and test rows; the slab itself is dropped. NaN or infinite features anywhere in the
    file are refused as `read_features` refuses them.
    """
    import dask
    import dask.array as da

    with fitting.float64_notes(announce):
        header = read_header(path)
    labels = protocol.choose_rows(header, test_size, seed, chosen or protocol.Protocol(),
                                  announce)
    bounds = block_bounds(header.n_rows, header.feature_dim, len(client.nthreads()))
    # The absolute path: workers may have another working directory.
    source = str(path.resolve())
    slabs = [dask.delayed(read_slab, pure=True)(source, start, stop) for start, stop in bounds]
    bad = dask.delayed(sum)([dask.delayed(nonfinite_rows, pure=True)(s) for s in slabs])
    X_train = _part(slabs, bounds, labels.train_rows, header.feature_dim)
    X_test = _part(slabs, bounds, labels.test_rows, header.feature_dim)
    y_train = da.from_array(labels.y_train, chunks=(X_train.chunks[0],))
    X_train, y_train, X_test, bad = client.persist([X_train, y_train, X_test, bad])
    n_bad = int(client.compute(bad).result())  # raises a worker's FeatureFileError as is
    if n_bad:
        raise nonfinite_error(path, n_bad)
    return ClusterData(header, labels, X_train, y_train, X_test)


def predict_block(estimator: Any, X: np.ndarray) -> np.ndarray:
    """Predictions of an ordinary fitted estimator on one block (a worker-side task)."""
    return np.asarray(estimator.predict(X))


def predict(client: Client, estimator: Any, X: da.Array) -> np.ndarray:
    """The estimator that will be saved, applied where the rows are; only labels come back."""
    shared = client.scatter(estimator, broadcast=True, hash=False)
    futures = client.map(predict_block, [shared] * X.numblocks[0], block_futures(X), pure=False)
    return np.concatenate(client.gather(futures))


def _fit(client: Client, data: ClusterData, spec: ModelSpec, config: ExperimentConfig,
         announce: Callable[[str], None]) -> tuple[Any, Any]:
    """The search (a ClusterSearch, or None without a grid) and the model to save."""
    grid = dict(config.grid)
    template = spec.build(config.seed, config.jobs)
    n_splits, folds = (protocol.search_folds(data.labels, config.cv, config.seed, announce)
                       if grid else (0, None))
    announce(fitting.fit_note(spec, grid, n_splits, len(data.labels.y_train), config.scoring))
    try:
        if not grid:
            return None, fit_on_cluster(template, data.X_train, data.y_train, client=client)
        search = ClusterSearch(template, grid, scoring=config.scoring, client=client,
                               cv=folds, progress=config.progress)
        return search, search.fit(data.X_train, data.y_train).best_estimator_
    except (ValueError, TypeError) as exc:  # XGBoostError is a ValueError
        raise fitting.fit_failure(spec, grid, exc) from None


def run(config: ExperimentConfig, spec: ModelSpec, timings: dict[str, float],
        announce: Callable[[str], None]) -> fitting.Fitted:
    """The experiment's search and refit on the cluster `config.cluster`."""
    from distributed import CancelledError  # Dask loads only on a cluster run
    from distributed.scheduler import KilledWorker

    assert config.cluster is not None
    path = config.features[0]
    grid = dict(config.grid)
    reason = unsupported(spec, grid, config.scale)
    if reason:
        raise protocol.ProtocolError(reason)
    if local_workers(config.cluster) is not None:
        # The workers write to this process's descriptor 2: route it through the filter
        # that drops XGBoost's native "got rank" lines before they start.
        import common.quiet  # noqa: F401
    try:
        with ExitStack() as stack:
            with fitting.timed(timings, "cluster"):
                client = stack.enter_context(connect(config.cluster))
                workers = client.nthreads()
            if not workers:
                raise ClusterError(f"--cluster {config.cluster}: the scheduler has no workers")
            announce(f"cluster {config.cluster}: {len(workers)} worker(s), "
                     f"{sum(workers.values())} thread(s)")
            with fitting.timed(timings, "load"):
                data = load(client, path, config.test_size, config.seed, announce,
                            fitting.chosen_protocol(config))
            announce(f"loaded {path} on the workers in {timings['load']:.2f} s")
            with (fitting.timed(timings, "search" if grid else "fit"),
                  fitting.recorded_warnings() as caught):
                searched, estimator = _fit(client, data, spec, config, announce)
            with fitting.timed(timings, "test"):
                y_pred = predict(client, estimator, data.X_test)
    except OSError as exc:  # e.g. the scheduler went away mid-run
        raise ClusterError(os_error_line(exc, config.cluster)) from None
    except (KilledWorker, CancelledError) as exc:  # workers died or left mid-run
        raise ClusterError(f"--cluster {config.cluster}: the run lost its workers "
                           f"({type(exc).__name__}: {exc})") from None
    header = data.header
    source = fitting.feature_source(path, header.attrs, header.n_rows, header.feature_dim,
                                    len(header.label_names))
    return fitting.Fitted([source], data.labels, header.paths, searched, estimator,
                          MODELS[spec.name], y_pred, None, caught)
