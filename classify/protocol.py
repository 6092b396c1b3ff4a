"""The evaluation protocol: split once, search on the training part only, score once.

The split depends only on the labels, the seed and the test size, so every model and
every backbone evaluated on the same dataset is scored on the same held-out images.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from classify.models import ModelSpec
from extract.store import Features

# Two images to appear in every training fold, one for the test part.
MIN_IMAGES_PER_CLASS = 3
MODEL_STEP = "model"
COPY_BLOCK_ROWS = 1024


class ProtocolError(ValueError):
    """The data cannot support the requested protocol; the message says which option to change."""


@dataclass
class Split:
    """The training and test parts of a feature file, labels re-encoded to 0..K-1."""

    X_train: np.ndarray  # memory-mapped: the search workers map it rather than copy it
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    train_rows: np.ndarray  # row numbers in the feature file
    test_rows: np.ndarray
    label_names: list[str]  # the classes kept; index = encoded label
    dropped: list[str] = field(default_factory=list)


@dataclass
class SearchResult:
    """What the cross-validated search chose (empty grid: nothing searched)."""

    best_params: dict[str, Any]
    cv_score: float | None
    n_splits: int | None
    candidates: list[dict[str, Any]]  # params, mean and std of the fold scores, rank
    # Left by a C path search (classify.logreg_path, classify.rowspace): its `refit`
    # starts from the folds' solutions.
    path: Any = field(default=None, repr=False)


@dataclass
class RefitResult:
    """The refitted best estimator and its predictions on the test part."""

    estimator: Any
    y_pred: np.ndarray
    warnings: list[str]


def split_rows(y: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified train/test row numbers, a function of (y, test_size, seed) alone."""
    from sklearn.model_selection import train_test_split

    try:
        train, test = train_test_split(
            np.arange(len(y)), test_size=test_size, random_state=seed, stratify=y
        )
    except ValueError as exc:
        raise ProtocolError(
            f"--test-size {test_size}: cannot split {len(y)} images: {exc}"
        ) from None
    return np.sort(train), np.sort(test)


def kept_classes(
    y: np.ndarray, label_names: list[str], min_images: int = MIN_IMAGES_PER_CLASS
) -> tuple[np.ndarray, list[str]]:
    """Indices of the classes with at least `min_images` images, and names of the others."""
    counts = np.bincount(y, minlength=len(label_names))
    keep = np.flatnonzero(counts >= min_images)
    dropped = [f"{label_names[c]} ({counts[c]})" for c in np.flatnonzero(counts < min_images)]
    return keep, dropped


@dataclass
class LabelSplit:
    """The split decided from the labels alone; rows are numbers in the feature file."""

    train_rows: np.ndarray
    test_rows: np.ndarray
    y_train: np.ndarray  # encoded 0..K-1 over the kept classes
    y_test: np.ndarray
    label_names: list[str]  # the classes kept; index = encoded label
    dropped: list[str]


def split_labels(
    y: np.ndarray,
    label_names: list[str],
    test_size: float,
    seed: int,
    announce: Callable[[str], None],
    source: Path,
) -> LabelSplit:
    """Drop classes too small to evaluate, re-encode the rest, split stratified.

    Needs only the labels, so a client can split rows that workers will read.
    """
    keep, dropped = kept_classes(y, label_names)
    if dropped:
        announce(
            f"warning: dropping {len(dropped)} class(es) with fewer than "
            f"{MIN_IMAGES_PER_CLASS} images: {', '.join(dropped)}"
        )
    if len(keep) < 2:
        raise ProtocolError(
            f"{source}: fewer than 2 classes have {MIN_IMAGES_PER_CLASS} or more images; "
            "nothing to classify"
        )
    encode = np.full(len(label_names), -1, dtype=np.int64)
    encode[keep] = np.arange(len(keep))
    y_all = encode[y]
    rows = np.flatnonzero(y_all >= 0)
    train_pos, test_pos = split_rows(y_all[rows], test_size, seed)
    train_rows, test_rows = rows[train_pos], rows[test_pos]
    return LabelSplit(
        train_rows=train_rows,
        test_rows=test_rows,
        y_train=y_all[train_rows],
        y_test=y_all[test_rows],
        label_names=[label_names[c] for c in keep],
        dropped=dropped,
    )


def _rows_to_memmap(X: np.ndarray, rows: np.ndarray, path: Path) -> np.ndarray:
    """X[rows] written block by block to an .npy file, reopened read-only and unread.

    joblib hands an np.memmap to its workers by file name, so the search workers share
    these pages instead of receiving their own copy, and this process holds none of
    them until the refit reads them.
    """
    out = np.lib.format.open_memmap(path, mode="w+", dtype=X.dtype, shape=(len(rows), X.shape[1]))
    for start in range(0, len(rows), COPY_BLOCK_ROWS):
        out[start : start + COPY_BLOCK_ROWS] = X[rows[start : start + COPY_BLOCK_ROWS]]
    out.flush()
    del out
    return np.load(path, mmap_mode="r")


def split_features(
    features: Features,
    test_size: float,
    seed: int,
    announce: Callable[[str], None],
    scratch: Path,
) -> Split:
    """Drop classes too small to evaluate, split, and copy each part out once.

    The training part goes to a memory-mapped file in `scratch`; the full matrix is
    released afterwards (features.X becomes empty), so no row is held twice.
    """
    labels = split_labels(
        features.y, features.label_names, test_size, seed, announce, features.path
    )
    split = Split(
        X_train=_rows_to_memmap(features.X, labels.train_rows, scratch / "X_train.npy"),
        y_train=labels.y_train,
        X_test=features.X[labels.test_rows],
        y_test=labels.y_test,
        train_rows=labels.train_rows,
        test_rows=labels.test_rows,
        label_names=labels.label_names,
        dropped=labels.dropped,
    )
    features.X = np.empty((0, features.X.shape[1]), dtype=features.X.dtype)
    return split


def fold_count(split: Split | LabelSplit, cv: int, announce: Callable[[str], None]) -> int:
    """`cv`, reduced when the smallest class has fewer training images than folds."""
    counts = np.bincount(split.y_train, minlength=len(split.label_names))
    smallest = int(counts.min())
    name = split.label_names[int(counts.argmin())]
    if smallest < 2:
        raise ProtocolError(
            f"--test-size: class '{name}' keeps {smallest} training image(s) after the split; "
            "lower --test-size"
        )
    if smallest < cv:
        announce(
            f"note: --cv {cv} reduced to {smallest}: class '{name}' has only {smallest} "
            "training images"
        )
        return smallest
    return cv


def build_pipeline(
    spec: ModelSpec, seed: int, n_jobs: int, scale: bool, *, scale_in_place: bool = False
) -> Any:
    """The estimator, behind a StandardScaler when asked (fitted per fold: no leakage).

    `scale_in_place` is for the search only: its folds are private copies (fancy-indexed
    by scikit-learn), so scaling them in place saves a copy of every fold per worker.
    """
    from sklearn.pipeline import Pipeline

    from classify.scaling import BlockwiseStandardScaler

    steps: list[tuple[str, Any]] = []
    if scale:
        steps.append(("scale", BlockwiseStandardScaler(copy=not scale_in_place)))
    steps.append((MODEL_STEP, spec.build(seed, n_jobs)))
    return Pipeline(steps)


def model_parameters(spec: ModelSpec) -> list[str]:
    """The parameters `--grid` may name for this model."""
    return list(spec.build(0, 1).get_params(deep=False))


def _in_pipeline(params: Mapping[str, Any]) -> dict[str, Any]:
    return {f"{MODEL_STEP}__{name}": value for name, value in params.items()}


def _grid_failure(spec: ModelSpec, exc: Exception) -> ProtocolError:
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ProtocolError(f"--grid: {spec.name} rejected a parameter value: {first_line}")


def folds(n_splits: int, seed: int) -> Any:
    """The search's splitter, the same for every path (local, row space, cluster)."""
    from sklearn.model_selection import StratifiedKFold

    return StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)


def summarise(
    params: list[dict[str, Any]], scores: Any, n_splits: int, path: Any = None
) -> SearchResult:
    """GridSearchCV's summary of fold scores (candidates x folds): mean and std over
    folds, rank 1 = best, the first of ties chosen."""
    from scipy.stats import rankdata

    scores = np.asarray(scores, dtype=np.float64)
    means, stds = scores.mean(axis=1), scores.std(axis=1)
    ranks = rankdata(-means, method="min").astype(int)
    best = int(ranks.argmin())
    candidates = [
        {"params": p, "mean": float(m), "std": float(s), "rank": int(r)}
        for p, m, s, r in zip(params, means, stds, ranks)
    ]
    return SearchResult(
        best_params=dict(params[best]), cv_score=float(means[best]), n_splits=n_splits,
        candidates=candidates, path=path,
    )  # fmt: skip


def _path_search(
    spec: ModelSpec,
    grid: Mapping[str, list[Any]],
    X_train: np.ndarray,
    y_train: np.ndarray,
    *,
    n_splits: int,
    seed: int,
    jobs: int,
) -> SearchResult:
    """GridSearchCV's search (same folds, accuracy, mean, std, rank and choice), each
    fold's C values fitted as a warm-started path (classify.logreg_path): on the
    features themselves, or in the row space of the training part where that is
    narrower (classify.rowspace)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import ParameterGrid

    from classify import logreg_path, rowspace

    params = list(ParameterGrid(dict(grid)))
    Cs = [p["C"] for p in params]
    splits = list(folds(n_splits, seed).split(X_train, y_train))
    estimator = spec.build(seed, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # as in `search`
        try:
            if rowspace.pays(X_train):
                scores, path = rowspace.search(
                    estimator, Cs, rowspace.gram(X_train), y_train, splits, X_train.dtype, jobs
                )
            else:
                scores, path = logreg_path.search(estimator, Cs, X_train, y_train, splits, jobs)
        except (ValueError, TypeError) as exc:
            raise _grid_failure(spec, exc) from None
    return summarise(params, scores, n_splits, path)


def search(
    spec: ModelSpec,
    grid: Mapping[str, list[Any]],
    X_train: np.ndarray,
    y_train: np.ndarray,
    *,
    n_splits: int | None,
    scale: bool,
    seed: int,
    jobs: int,
) -> SearchResult:
    """Cross-validated grid search over the training part only (no refit here).

    An L2 logistic regression over C alone, without scaler (classify.logreg_path.applies),
    fits each fold's C values as a warm-started path: the same objective on the same
    folds, scored, averaged and ranked as GridSearchCV does.
    """
    if not grid or n_splits is None:
        return SearchResult(best_params={}, cv_score=None, n_splits=None, candidates=[])
    from classify import logreg_path

    if logreg_path.applies(spec.build(seed, 1), grid, scale):
        return _path_search(
            spec, grid, X_train, y_train, n_splits=n_splits, seed=seed, jobs=jobs
        )
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import GridSearchCV

    searcher = GridSearchCV(
        build_pipeline(spec, seed, 1, scale, scale_in_place=True),
        _in_pipeline(grid),
        cv=folds(n_splits, seed),
        n_jobs=jobs,
        refit=False,
        error_score="raise",
    )
    with warnings.catch_warnings():
        # Candidates that stop at max_iter only lose score; the chosen one is refitted
        # in `refit_and_test`, which reports its convergence.
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            searcher.fit(X_train, y_train)
        except (ValueError, TypeError) as exc:
            raise _grid_failure(spec, exc) from None
    results = searcher.cv_results_
    prefix = f"{MODEL_STEP}__"
    candidates = [
        {
            "params": {k.removeprefix(prefix): v for k, v in params.items()},
            "mean": float(mean),
            "std": float(std),
            "rank": int(rank),
        }
        for params, mean, std, rank in zip(
            results["params"],
            results["mean_test_score"],
            results["std_test_score"],
            results["rank_test_score"],
        )
    ]
    return SearchResult(
        best_params={k.removeprefix(prefix): v for k, v in searcher.best_params_.items()},
        cv_score=float(searcher.best_score_),
        n_splits=n_splits,
        candidates=candidates,
    )


def refit_and_test(
    spec: ModelSpec,
    params: Mapping[str, Any],
    split: Split,
    *,
    scale: bool,
    seed: int,
    jobs: int,
    path: Any = None,
) -> RefitResult:
    """Fit the chosen parameters on the whole training part, predict the test part once.

    With `path` (SearchResult.path) the fit starts from the folds' solutions at the
    chosen C and comes back as the same estimator on the original features.
    """
    estimator = build_pipeline(spec, seed, jobs, scale).set_params(**_in_pipeline(params))
    fit = estimator.fit
    if path is not None and params:

        def fit(X: np.ndarray, y: np.ndarray) -> None:
            model = estimator.named_steps[MODEL_STEP]
            estimator.steps[-1] = (MODEL_STEP, path.refit(model, params["C"], X, y))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", DeprecationWarning)  # library internals, not the user's
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        try:
            fit(split.X_train, split.y_train)
        except (ValueError, TypeError) as exc:
            if not params:
                raise
            raise _grid_failure(spec, exc) from None
        y_pred = np.asarray(estimator.predict(split.X_test))
    messages = sorted({f"{w.category.__name__}: {str(w.message).splitlines()[0]}" for w in caught})
    return RefitResult(estimator=estimator, y_pred=y_pred, warnings=messages)
