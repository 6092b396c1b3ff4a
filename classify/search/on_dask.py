"""The search of `classify --cluster`, a scikit-learn estimator fitted on Dask arrays.

`ClusterSearch.fit(X, y)` takes the training rows persisted on the workers and
answers as the local searches do: the same candidates (ParameterGrid's order), folds
(`cv`), scores, `cv_results_` schema and choice (results.choose). The fits run where
the rows are and only validation probabilities come back, so every `--scoring` works.
An L2 LogisticRegression searched over C fits each fold's C path out of core
(classify.search.dask_logreg), the folds side by side; an XGBClassifier fits each
(candidate, fold) through XGBoost's Dask interface, one after the other, each on every
worker. `best_estimator_` is the ordinary LogisticRegression or XGBClassifier a local
run saves, so predict needs no cluster.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import KW_ONLY, dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import clone

from classify.search import dask_logreg, logreg
from classify.search.base import Evaluation, Folds, Search, path_evaluation
from classify.search.results import LOG_LOSS, SCORE, SCORINGS

if TYPE_CHECKING:
    import dask.array as da
    from distributed import Client


def scores_of(scoring: str, y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Validation scores from probabilities, as scikit-learn's scorers compute them from
    an estimator's predict (the most likely class) and predict_proba.

    Parameters
    ----------
    scoring : str
        The selection score's name (results.SCORINGS).
    y_true : ndarray of shape (n_samples,)
        The class numbers 0..K-1.
    proba : ndarray of shape (n_samples, K)
        The class probabilities.

    Returns
    -------
    dict of str to float
        "score", and unless that is the log-loss itself "neg_log_loss": the negated
        mean log-loss.
    """
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, log_loss

    neg_log_loss = -float(log_loss(y_true, proba, labels=np.arange(proba.shape[1])))
    if scoring == LOG_LOSS:
        return {SCORE: neg_log_loss}
    metric = {"accuracy": accuracy_score, "balanced_accuracy": balanced_accuracy_score,
              "f1_macro": partial(f1_score, average="macro")}[scoring]
    return {SCORE: float(metric(y_true, proba.argmax(axis=1))), LOG_LOSS: neg_log_loss}


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
    """A fitted copy of `estimator` on all rows of X, y, fitted where they live.

    A logreg fit that stops at its iteration limit warns with a ConvergenceWarning, as
    scikit-learn's does.

    Parameters
    ----------
    estimator : LogisticRegression or XGBClassifier
        An L2 LogisticRegression or an XGBClassifier, with the parameters to fit.
    X : dask.array.Array of shape (n_samples, n_features)
        The rows, on the cluster's workers.
    y : array-like of shape (n_samples,)
        Their class numbers 0..K-1.
    client : distributed.Client or None
        The Dask client (None: the default one).
    start : ndarray or None
        logreg's flat coefficients to start L-BFGS-B from (None: zeros).

    Returns
    -------
    LogisticRegression or XGBClassifier
        An ordinary fitted estimator that predicts here, without the cluster.
    """
    import dask.array as da
    from distributed import default_client

    client = client or default_client()
    X = _on_workers(client, X)
    y, n_classes = _labels(y)
    if _is_logreg(estimator):
        from sklearn.exceptions import ConvergenceWarning

        _check_logreg(estimator, [estimator.C], [])
        blocks = dask_logreg.Blocks.of(client, X, y, n_classes)
        weights = blocks.split_weights(np.arange(len(y)))
        fitted = dask_logreg.fit(blocks, weights, len(y), estimator.C, start)
        if not fitted.converged:
            warnings.warn(f"L-BFGS-B stopped after {fitted.n_iter} iterations "
                          f"({fitted.message.splitlines()[0]})", ConvergenceWarning,
                          stacklevel=2)
        return dask_logreg.to_sklearn(estimator, fitted.theta, blocks.n_features,
                                      n_classes, fitted.n_iter)
    model = _xgb_on_cluster(client, estimator, X, da.from_array(y, chunks=(X.chunks[0],)))
    local = clone(estimator)
    # The booster is a plain XGBoost model; loading it makes an ordinary classifier.
    local.load_model(bytearray(model.get_booster().save_raw("ubj")))
    return local


def _mean_theta(points: list[dask_logreg.PathPoint]) -> np.ndarray:
    """The folds' mean solution at one C, where the refit at that C starts."""
    return np.mean([point.theta for point in points], axis=0)


@dataclass(eq=False, repr=False)
class ClusterSearch(Search):
    """GridSearchCV(estimator, param_grid, scoring, cv) on a Dask cluster, for an L2
    LogisticRegression over C or an XGBClassifier over any of its parameters.

    fit(X, y) takes X as a Dask array (ideally persisted: classify.cluster.load) and y
    as the class numbers 0..K-1 of its rows.

    Parameters
    ----------
    estimator, scoring, cv, progress
        As for `Search`; estimator an L2 LogisticRegression or an XGBClassifier, and
        scoring one of results.SCORINGS.
    param_grid : mapping of str to sequence
        Each parameter's values; the candidates are their product (ParameterGrid).
    client : distributed.Client or None
        The Dask client (None: the default one).
    """

    param_grid: Mapping[str, Sequence[Any]]
    _: KW_ONLY
    client: Client | None = None

    def _client(self) -> Client:
        from distributed import default_client

        return self.client or default_client()

    def _prepared(self, X: da.Array, y: Any) -> tuple[da.Array, np.ndarray]:
        if self.scoring not in SCORINGS:
            raise ValueError(f"scoring {self.scoring!r}: choose one of {', '.join(SCORINGS)}")
        return _on_workers(self._client(), X), _labels(y)[0]

    def _candidates(self) -> list[dict[str, Any]]:
        from sklearn.model_selection import ParameterGrid

        candidates = list(ParameterGrid(dict(self.param_grid)))
        if _is_logreg(self.estimator):
            _check_logreg(self.estimator, self._Cs(candidates), list(self.param_grid))
        return candidates

    def _Cs(self, candidates: list[dict[str, Any]]) -> list[float]:
        """Each candidate's C (a logreg search)."""
        return [params.get("C", self.estimator.C) for params in candidates]

    def _fits_per_fold(self, candidates: list[dict[str, Any]]) -> int:
        if _is_logreg(self.estimator):
            return len(set(self._Cs(candidates)))
        return len(candidates)

    def _evaluate(self, X: da.Array, y: np.ndarray, candidates: list[dict[str, Any]],
                  folds: Folds, bar: Any) -> Evaluation:
        if _is_logreg(self.estimator):
            return self._logreg_paths(X, y, self._Cs(candidates), folds, bar)
        return self._xgb_fits(X, y, candidates, folds, bar)

    def _refit(self, X: da.Array, y: np.ndarray, starts: dict[float, np.ndarray] | None
               ) -> Any:
        best = self._chosen()
        start = None if starts is None else starts[best.C]
        return fit_on_cluster(best, X, y, client=self._client(), start=start)

    def _logreg_paths(self, X: da.Array, y: np.ndarray, Cs: list[float], folds: Folds,
                      bar: Any) -> Evaluation:
        """Every fold's C path (the folds' optimisers wait on the cluster most of the
        time: they run side by side); the refit on all rows starts from each C's folds'
        mean solution."""
        # y holds the class numbers 0..K-1 (_labels checked them).
        blocks = dask_logreg.Blocks.of(self._client(), X, y, int(y.max()) + 1)

        def path(fold: tuple[np.ndarray, np.ndarray]) -> dict[float, dask_logreg.PathPoint]:
            train, val = fold
            score = partial(scores_of, self.scoring, y[np.sort(val)])
            return dask_logreg.fit_path(blocks, train, val, Cs, score, lambda: bar.update(1))

        with ThreadPoolExecutor(len(folds)) as pool:
            paths = list(pool.map(path, folds))
        return path_evaluation(paths, Cs, _mean_theta)

    def _xgb_fits(self, X: da.Array, y: np.ndarray, candidates: list[dict[str, Any]],
                  folds: Folds, bar: Any) -> Evaluation:
        """Each candidate fitted on each fold's training rows and scored on its
        validation rows, one after the other."""
        import dask.array as da

        client = self._client()
        y_blocks = da.from_array(y, chunks=(X.chunks[0],))
        evaluation = Evaluation.empty(len(candidates), len(folds))
        for i, params in enumerate(candidates):
            for j, (train, val) in enumerate(folds):
                started = time.perf_counter()
                model = _xgb_on_cluster(client, clone(self.estimator).set_params(**params),
                                        X[train], y_blocks[train])
                fitted = time.perf_counter()
                proba = client.compute(model.predict_proba(X[val])).result()
                scores = scores_of(self.scoring, y[val], proba)
                evaluation.record(i, j, scores, fitted - started, time.perf_counter() - fitted)
                bar.update(1)
        return evaluation
