"""The search of `classify --cluster`, a scikit-learn estimator fitted on Dask arrays.

`ClusterSearch.fit(X, y)` takes the training rows persisted on the workers and
answers as the local searches do: the same candidates (ParameterGrid's order), folds
(`cv`), scores, `cv_results_` schema and choice (results.choose). The fits run where
the rows are and only validation probabilities come back, so every `--scoring` works.
An L2 LogisticRegression searched over C fits each fold's C path out of core
(classify.cluster_logreg), the folds side by side; an XGBClassifier fits each
(candidate, fold) through XGBoost's Dask interface, one after the other, each on every
worker. `best_estimator_` is the ordinary LogisticRegression or XGBClassifier a local
run saves, so predict needs no cluster.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import clone

from classify import cluster_logreg
from classify.search import logreg
from classify.search.base import Search
from classify.search.results import LOG_LOSS, SCORE, SCORINGS, progress_bar

if TYPE_CHECKING:
    import dask.array as da
    from distributed import Client


def scores_of(scoring: str, y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """The selection score and, unless that is the log-loss itself, the negated mean
    log-loss of validation probabilities, as scikit-learn's scorers compute them from
    an estimator's predict (the most likely class) and predict_proba."""
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, log_loss

    neg_log_loss = -float(log_loss(y_true, proba, labels=np.arange(proba.shape[1])))
    if scoring == LOG_LOSS:
        return {SCORE: neg_log_loss}
    metric = {"accuracy": accuracy_score, "balanced_accuracy": balanced_accuracy_score,
              "f1_macro": partial(f1_score, average="macro")}[scoring]
    return {SCORE: float(metric(y_true, proba.argmax(axis=1))), LOG_LOSS: neg_log_loss}


@dataclass
class FoldTables:
    """Per candidate and fold (candidates x folds): each metric's validation score, and
    the seconds spent fitting and scoring."""

    scores: dict[str, np.ndarray]
    fit_seconds: np.ndarray
    score_seconds: np.ndarray


def _on_workers(client: Client, X: da.Array) -> da.Array:
    """X with whole rows per block, persisted on the workers (as it is already when
    classify.cluster.load made it)."""
    from distributed import futures_of

    if X.numblocks[1] != 1:
        X = X.rechunk({1: -1})
    return X if futures_of(X) else client.persist(X)


def _labels(y: Any) -> tuple[np.ndarray, int]:
    """y (a Dask or NumPy array of class numbers 0..K-1) in this process, and K."""
    y = np.asarray(y)
    classes = np.unique(y)
    if not np.array_equal(classes, np.arange(len(classes))):
        raise ValueError("y must hold class numbers 0..K-1; encode labels with "
                         "np.unique(y, return_inverse=True)")
    return y, len(classes)


def _is_logreg(estimator: Any) -> bool:
    """True for a LogisticRegression, False for an XGBClassifier; others are refused."""
    from sklearn.linear_model import LogisticRegression
    from xgboost import XGBClassifier

    if not isinstance(estimator, (LogisticRegression, XGBClassifier)):
        raise TypeError("a cluster fits a LogisticRegression or an XGBClassifier, not "
                        f"{type(estimator).__name__}")
    return isinstance(estimator, LogisticRegression)


def _check_logreg(estimator: Any, Cs: Sequence[float], searched: Sequence[str]) -> None:
    """Refuse what the out-of-core fit does not fit: anything but an L2 LogisticRegression
    at positive, finite C values (`searched`: the grid's parameter names)."""
    if set(searched) - {"C"} or not logreg.applies(estimator, {"C": list(Cs)}):
        raise ValueError("a cluster fits an L2 LogisticRegression over positive, finite C "
                         f"values only, not C in {list(Cs)} with {sorted(searched)} searched")


def _xgb_on_cluster(client: Client, estimator: Any, X: da.Array, y: da.Array) -> Any:
    """A DaskXGBClassifier with `estimator`'s parameters, fitted on X, y (the workers
    use their own threads)."""
    from xgboost.dask import DaskXGBClassifier

    model = DaskXGBClassifier(**{**estimator.get_params(), "n_jobs": None})
    model.client = client
    return model.fit(X, y)


def fit_on_cluster(estimator: Any, X: da.Array, y: Any, *, client: Client | None = None,
                   start: np.ndarray | None = None) -> Any:
    """A fitted copy of `estimator` (an L2 LogisticRegression or an XGBClassifier) on
    all rows of X, y, fitted where they live; an ordinary estimator that predicts here.

    start: logreg's flat coefficients to start L-BFGS-B from. A logreg fit that stops at
    its iteration limit warns with a ConvergenceWarning, as scikit-learn's does.
    """
    import dask.array as da
    from distributed import default_client

    client = client or default_client()
    X = _on_workers(client, X)
    y, n_classes = _labels(y)
    if _is_logreg(estimator):
        from sklearn.exceptions import ConvergenceWarning

        _check_logreg(estimator, [estimator.C], [])
        blocks = cluster_logreg.Blocks.of(client, X, y, n_classes)
        weights = blocks.split_weights(np.arange(len(y)))
        fitted = cluster_logreg.fit(blocks, weights, len(y), estimator.C, start)
        if not fitted.converged:
            warnings.warn(f"L-BFGS-B stopped after {fitted.n_iter} iterations "
                          f"({fitted.message.splitlines()[0]})", ConvergenceWarning,
                          stacklevel=2)
        return cluster_logreg.to_sklearn(estimator, fitted.theta, blocks.n_features,
                                         n_classes, fitted.n_iter)
    model = _xgb_on_cluster(client, estimator, X, da.from_array(y, chunks=(X.chunks[0],)))
    local = clone(estimator)
    # The booster is a plain XGBoost model; loading it makes an ordinary classifier.
    local.load_model(bytearray(model.get_booster().save_raw("ubj")))
    return local


class ClusterSearch(Search):
    """GridSearchCV(estimator, param_grid, scoring, cv) on a Dask cluster, for an L2
    LogisticRegression over C or an XGBClassifier over any of its parameters.

    fit(X, y): X a Dask array (ideally persisted: classify.cluster.load), y the class
    numbers 0..K-1 of its rows. client: the Dask client (None: the default one).
    """

    def __init__(
        self,
        estimator: Any,
        param_grid: Mapping[str, Sequence[Any]],
        *,
        scoring: str = "accuracy",
        cv: Any = 3,
        client: Client | None = None,
        progress: bool = True,
    ) -> None:
        self.estimator = estimator
        self.param_grid = param_grid
        self.scoring = scoring
        self.cv = cv
        self.client = client
        self.progress = progress

    def fit(self, X: da.Array, y: Any) -> ClusterSearch:
        from distributed import default_client
        from sklearn.model_selection import ParameterGrid, check_cv

        if self.scoring not in SCORINGS:
            raise ValueError(f"scoring {self.scoring!r}: choose one of {', '.join(SCORINGS)}")
        client = self.client or default_client()
        X = _on_workers(client, X)
        y, n_classes = _labels(y)
        folds = list(check_cv(self.cv, y, classifier=True).split(np.zeros((len(y), 1)), y))
        candidates = list(ParameterGrid(dict(self.param_grid)))
        is_logreg = _is_logreg(self.estimator)
        if is_logreg:
            Cs = [params.get("C", self.estimator.C) for params in candidates]
            _check_logreg(self.estimator, Cs, list(self.param_grid))
            total = len(set(Cs)) * len(folds)
        else:
            total = len(candidates) * len(folds)
        with progress_bar(total, self.progress, "search") as bar:
            if is_logreg:
                tables, starts = self._logreg_paths(client, X, y, n_classes, Cs, folds, bar)
            else:
                tables, starts = self._xgb_fits(client, X, y, candidates, folds, bar), None
        self._choose(candidates, tables.scores, tables.fit_seconds, tables.score_seconds, folds)
        started = time.perf_counter()
        best = clone(self.estimator).set_params(**self.best_params_)
        start = None if starts is None else starts[best.C]
        self.best_estimator_ = fit_on_cluster(best, X, y, client=client, start=start)
        self.refit_time_ = time.perf_counter() - started
        self.classes_ = self.best_estimator_.classes_
        return self

    def _logreg_paths(
        self, client: Client, X: da.Array, y: np.ndarray, n_classes: int, Cs: list[float],
        folds: list[tuple[np.ndarray, np.ndarray]], bar: Any,
    ) -> tuple[FoldTables, dict[float, np.ndarray]]:  # fmt: skip
        """Every fold's C path (the folds' optimisers wait on the cluster most of the
        time: they run side by side); the tables, and each C's folds' mean solution,
        where the refit on all rows starts."""
        blocks = cluster_logreg.Blocks.of(client, X, y, n_classes)

        def path(fold: tuple[np.ndarray, np.ndarray]) -> dict[float, cluster_logreg.PathPoint]:
            train, val = fold
            score = partial(scores_of, self.scoring, y[np.sort(val)])
            return cluster_logreg.fit_path(blocks, train, val, Cs, score,
                                           lambda: bar.update(1))

        with ThreadPoolExecutor(len(folds)) as pool:
            paths = list(pool.map(path, folds))
        tables = FoldTables(
            {name: np.array([[p[C].scores[name] for p in paths] for C in Cs])
             for name in paths[0][Cs[0]].scores},
            np.array([[p[C].fit_seconds for p in paths] for C in Cs]),
            np.array([[p[C].score_seconds for p in paths] for C in Cs]),
        )  # fmt: skip
        starts = {C: np.mean([p[C].theta for p in paths], axis=0) for C in paths[0]}
        return tables, starts

    def _xgb_fits(
        self, client: Client, X: da.Array, y: np.ndarray, candidates: list[dict[str, Any]],
        folds: list[tuple[np.ndarray, np.ndarray]], bar: Any,
    ) -> FoldTables:  # fmt: skip
        """Each candidate fitted on each fold's training rows and scored on its
        validation rows; the tables."""
        import dask.array as da

        y_blocks = da.from_array(y, chunks=(X.chunks[0],))
        shape = (len(candidates), len(folds))
        scores: dict[str, np.ndarray] = {}
        fit_times, score_times = np.zeros(shape), np.zeros(shape)
        for i, params in enumerate(candidates):
            for j, (train, val) in enumerate(folds):
                started = time.perf_counter()
                model = _xgb_on_cluster(client, clone(self.estimator).set_params(**params),
                                        X[train], y_blocks[train])
                fitted = time.perf_counter()
                proba = client.compute(model.predict_proba(X[val])).result()
                for name, value in scores_of(self.scoring, y[val], proba).items():
                    scores.setdefault(name, np.full(shape, np.nan))[i, j] = value
                fit_times[i, j], score_times[i, j] = fitted - started, time.perf_counter() - fitted
                bar.update(1)
        return FoldTables(scores, fit_times, score_times)
