"""The in-process backend: read the features into memory, split, search, refit, predict.

Its counterpart for features spread over Dask workers is classify.cluster; both hand
a `Fitted` to classify.experiment, which evaluates and saves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline

from classify import fusion, protocol
from classify.config import MODEL_STEP, ExperimentConfig
from classify.fit_progress import fit_with_progress
from classify.fitting import (
    Fitted,
    chosen_protocol,
    feature_source,
    fit_failure,
    fit_note,
    float64_notes,
    recorded_warnings,
    timed,
)
from classify.models import ModelSpec
from classify.scaling import BlockwiseStandardScaler
from classify.search import make_search
from extract.featurefile import Features


def load_features(paths: Sequence[Path], announce: Callable[[str], None]) -> Features:
    """The features of a run: one file, or several fused (classify.fusion)."""
    with float64_notes(announce):
        return fusion.read_fused(paths)


def _estimator(spec: ModelSpec, scale: bool, seed: int, jobs: int) -> Any:
    """The model, behind a scaler fitted per fold when asked."""
    model = spec.build(seed, jobs)
    if not scale:
        return model
    return Pipeline([("scale", BlockwiseStandardScaler()), (MODEL_STEP, model)])


def run(config: ExperimentConfig, spec: ModelSpec, timings: dict[str, float],
        announce: Callable[[str], None], scratch: Path) -> Fitted:
    """Split, search (or fit the defaults), refit and predict the test part, here.

    `scratch` holds the training part as a file that the search's workers map.
    """
    with timed(timings, "load"):
        features = load_features(config.features, announce)
        sources = [feature_source(Path(path), attrs, len(features.y), int(attrs["feature_dim"]),
                                  len(features.label_names))
                   for path, attrs in zip(config.features, fusion.extractors(features.attrs))]
        split = protocol.split_features(features, config.test_size, config.seed, announce,
                                        scratch, chosen_protocol(config))
    announce(f"loaded {' + '.join(str(path) for path in config.features)} in "
             f"{timings['load']:.2f} s")
    grid = dict(config.grid)
    search = None
    if grid:
        n_splits, folds = protocol.search_folds(split, config.cv, config.seed, announce)
        base = _estimator(spec, config.scale, config.seed, 1)
        search_grid = ({f"{MODEL_STEP}__{k}": v for k, v in grid.items()} if config.scale
                       else grid)
        search = make_search(base, search_grid, scoring=config.scoring, cv=folds,
                             n_jobs=config.jobs, progress=config.progress)
        model: Any = search
    else:
        n_splits = 0
        estimator = _estimator(spec, config.scale, config.seed, config.jobs)
        model = estimator
    announce(fit_note(spec, grid, n_splits, len(split.y_train), config.scoring))
    with timed(timings, "search" if grid else "fit"), recorded_warnings() as caught:
        try:
            fit_with_progress(model, split.X_train, split.y_train, config.progress)
        except (ValueError, TypeError) as exc:
            raise fit_failure(spec, grid, exc) from None
    if search is not None:
        estimator = search.best_estimator_
    with timed(timings, "test"):
        y_pred = np.asarray(estimator.predict(split.X_test))
        top = (estimator.predict_proba(split.X_test).max(axis=1)
               if hasattr(estimator, "predict_proba") else None)
    return Fitted(sources, split, features.paths, search, estimator, spec.summary, y_pred,
                   top, caught)

