"""`classify --cluster`: the same protocol with the features spread over Dask workers.

The client reads and checks the file's header, labels and names (small) and decides
the split and the folds exactly as the local path does; the workers read the feature
rows themselves, block by block, and keep the training and test parts in memory
(persisted) for the whole run. logreg is fitted out of core (classify.cluster_logreg),
xgb through XGBoost's Dask interface. Both end as ordinary fitted estimators, so the
saved bundle is the same as a local run's and `predict` needs no cluster.
"""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from classify import cluster_logreg, protocol
from classify.models import ModelSpec
from classify.protocol import LabelSplit
from classify.search.results import LOG_LOSS, SCORE, choose, cv_results, one_image
from extract.store import (
    FeatureFileError,
    FeatureHeader,
    nonfinite_error,
    nonfinite_rows,
    read_block,
    read_header,
)

if TYPE_CHECKING:
    import dask.array as da
    from distributed import Client, Future

    from classify.experiment import ExperimentConfig, Fitted

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
        return "--scale is not supported with --cluster (scale the features before extract)"
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
    # logreg: a start for the refit of each C searched, so it needs fewer iterations.
    logreg_starts: dict[float, np.ndarray] = field(default_factory=dict)


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
    client: Client, path: Path, test_size: float, seed: int, announce: Callable[[str], None]
) -> ClusterData:
    """Check the file in the client, split its labels, and have the workers read the rows.

    Each read task reads one contiguous slab of the file once and keeps its training
    and test rows; the slab itself is dropped. NaN or infinite features anywhere in the
    file are refused as `read_features` refuses them.
    """
    import dask
    import dask.array as da

    header = read_header(path)
    labels = protocol.split_labels(
        header.y, header.label_names, test_size, seed, announce, header.path
    )
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


def block_futures(array: da.Array) -> list[Future]:
    """The futures of a persisted array's row blocks, in row order."""
    from dask.core import flatten
    from distributed import futures_of

    by_key = {future.key: future for future in futures_of(array)}
    return [by_key[key] for key in flatten(array.__dask_keys__())]


def predict_block(estimator: Any, X: np.ndarray) -> np.ndarray:
    """Predictions of an ordinary fitted estimator on one block (a worker-side task)."""
    return np.asarray(estimator.predict(X))


def predict(client: Client, estimator: Any, X: da.Array) -> np.ndarray:
    """The estimator that will be saved, applied where the rows are; only labels come back."""
    shared = client.scatter(estimator, broadcast=True, hash=False)
    futures = client.map(predict_block, [shared] * X.numblocks[0], block_futures(X), pure=False)
    return np.concatenate(client.gather(futures))


def _candidates(spec: ModelSpec, grid: Mapping[str, list[Any]]) -> list[dict]:
    """The grid in GridSearchCV's order; logreg's C values checked here (XGBoost checks
    its own parameters when fitting)."""
    from sklearn.model_selection import ParameterGrid

    if spec.name == "logreg":
        bad = [c for c in grid.get("C", []) if not (isinstance(c, (int, float))
                                                   and not isinstance(c, bool) and 0 < c < np.inf)]
        if bad:
            raise protocol.ProtocolError(f"--grid: C must be positive and finite, not {bad[0]}")
    return list(ParameterGrid(dict(grid)))


@dataclass
class ClusterSearch:
    """A finished cluster search, with the results a local search estimator has."""

    cv_results_: dict[str, Any]
    best_params_: dict[str, Any]
    best_score_: float
    n_splits_: int
    tie_break_: str | None = None


def search(
    client: Client,
    data: ClusterData,
    spec: ModelSpec,
    grid: Mapping[str, list[Any]],
    *,
    n_splits: int,
    seed: int,
    scoring: str,
) -> ClusterSearch:
    """Cross-validated grid search over the training part, every fit on the cluster
    (scored by accuracy: the workers count correct predictions)."""
    import time

    started = time.perf_counter()
    candidates = _candidates(spec, grid)
    tables: dict[str, np.ndarray] = {}
    y_train = data.labels.y_train
    folds = list(protocol.folds(n_splits, seed).split(np.zeros(len(y_train)), y_train))
    if spec.name == "logreg":
        blocks = _logreg_blocks(client, data)
        Cs = [params["C"] for params in candidates]
        # The folds' optimisers wait on the cluster most of the time: run them side by side.
        with ThreadPoolExecutor(len(folds)) as pool:
            paths = list(pool.map(lambda f: cluster_logreg.fit_path(blocks, f[0], f[1], Cs),
                                  folds))
        scores = [[path[params["C"]].score for path in paths] for params in candidates]
        tables[LOG_LOSS] = np.array([[-path[params["C"]].log_loss for path in paths]
                                     for params in candidates])
        # The folds' mean solution of each C: where the refit on all rows starts.
        data.logreg_starts = {
            C: np.mean([path[C].theta for path in paths], axis=0) for C in paths[0]
        }
    else:
        scores = []
        for params in candidates:
            fold_scores = []
            for train, val in folds:
                model = _xgb_fit(client, spec, seed, params, data.X_train[train],
                                 data.y_train[train])
                predicted = model.predict(data.X_train[val]).compute()
                fold_scores.append(float(np.mean(predicted == y_train[val])))
            scores.append(fold_scores)
    seconds = (time.perf_counter() - started) / max(1, len(candidates) * n_splits)
    times = np.full((len(candidates), n_splits), seconds)
    tables = {SCORE: np.array(scores), **tables}
    results = cv_results(candidates, tables, times, np.zeros_like(times))
    choice = choose(results, scoring, one_image(folds))
    return ClusterSearch(results, dict(candidates[choice.index]),
                         float(results[f"mean_test_{SCORE}"][choice.index]), n_splits)


def _logreg_blocks(client: Client, data: ClusterData) -> cluster_logreg.Blocks:
    return cluster_logreg.Blocks(
        client=client,
        X=block_futures(data.X_train),
        y=block_futures(data.y_train),
        sizes=list(data.X_train.chunks[0]),
        n_features=data.header.feature_dim,
        n_classes=len(data.labels.label_names),
    )


def _xgb_fit(client: Client, spec: ModelSpec, seed: int, params: Mapping[str, Any],
             X: da.Array, y: da.Array) -> Any:
    """A DaskXGBClassifier with the local model's settings and `params`, fitted on X, y."""
    from xgboost.dask import DaskXGBClassifier

    settings = {**spec.build(seed, 1).get_params(), **params, "n_jobs": None}
    model = DaskXGBClassifier(**settings)
    model.client = client
    try:
        return model.fit(X, y)
    except (ValueError, TypeError) as exc:  # XGBoostError is a ValueError
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise protocol.ProtocolError(f"--grid: {spec.name} rejected a parameter value: "
                                     f"{first_line}") from None


def refit_and_test(
    client: Client, data: ClusterData, spec: ModelSpec, params: Mapping[str, Any], *,
    seed: int, jobs: int,
) -> tuple[Any, np.ndarray, list[str]]:  # fmt: skip
    """Fit the chosen parameters on the whole training part, predict the test part once.

    The estimator returned is the ordinary scikit-learn / XGBoost one a local run saves.
    """
    warnings: list[str] = []
    template = spec.build(seed, jobs).set_params(**params)
    if spec.name == "logreg":
        blocks = _logreg_blocks(client, data)
        n_train = len(data.labels.y_train)
        weights = blocks.split_weights(np.arange(n_train))
        start = data.logreg_starts.get(template.C)
        fitted = cluster_logreg.fit(blocks, weights, n_train, template.C, start)
        if not fitted.converged:
            warnings.append(
                f"ConvergenceWarning: L-BFGS-B stopped after {fitted.n_iter} iterations "
                f"({fitted.message.splitlines()[0]})"
            )
        estimator = cluster_logreg.to_sklearn(
            template, fitted.theta, blocks.n_features, blocks.n_classes, fitted.n_iter
        )
    else:
        model = _xgb_fit(client, spec, seed, params, data.X_train, data.y_train)
        estimator = template
        # The booster is a plain XGBoost model; loading it makes an ordinary classifier.
        estimator.load_model(bytearray(model.get_booster().save_raw("ubj")))
    y_pred = predict(client, estimator, data.X_test)
    return estimator, y_pred, warnings


def run(config: ExperimentConfig, spec: ModelSpec, timings: dict[str, float],
        announce: Callable[[str], None]) -> Fitted:
    """The experiment's search and refit on the cluster `config.cluster`."""
    from contextlib import ExitStack

    from distributed import CancelledError
    from distributed.scheduler import KilledWorker

    from classify.experiment import Fitted, feature_source, timed
    from extract.cluster import ClusterError, connect

    assert config.cluster is not None
    path = config.features[0]
    grid = dict(config.grid)
    reason = unsupported(spec, grid, config.scale)
    if reason:
        raise protocol.ProtocolError(reason)
    try:
        with ExitStack() as stack:
            with timed(timings, "cluster"):
                client = stack.enter_context(connect(config.cluster))
                workers = client.nthreads()
            if not workers:
                raise ClusterError(f"--cluster {config.cluster}: the scheduler has no workers")
            announce(f"cluster {config.cluster}: {len(workers)} worker(s), "
                     f"{sum(workers.values())} thread(s)")
            with timed(timings, "load"):
                data = load(client, path, config.test_size, config.seed, announce)
            announce(f"loaded {path} on the workers in {timings['load']:.2f} s")
            searched = None
            params: dict[str, Any] = {}
            with timed(timings, "search" if grid else "fit"):
                if grid:
                    n_splits = protocol.fold_count(data.labels, config.cv, announce)
                    searched = search(client, data, spec, grid, n_splits=n_splits,
                                      seed=config.seed, scoring=config.scoring)
                    params = searched.best_params_
                estimator, y_pred, caught = refit_and_test(client, data, spec, params,
                                                           seed=config.seed, jobs=config.jobs)
    except OSError as exc:  # e.g. the scheduler went away mid-run
        from extract.errors import os_error_line

        raise ClusterError(os_error_line(exc, config.cluster)) from None
    except (KilledWorker, CancelledError) as exc:  # workers died or left mid-run
        raise ClusterError(f"--cluster {config.cluster}: the run lost its workers "
                           f"({type(exc).__name__}: {exc})") from None
    header = data.header
    source = feature_source(path, header.attrs, header.n_rows, header.feature_dim,
                            len(header.label_names))
    return Fitted([source], data.labels, header.paths, searched, estimator, MODELS[spec.name],
                   y_pred, None, caught)
