"""What every search leaves behind and how it chooses, shared by all searches.

`cv_results_` follows GridSearchCV's multi-metric schema with the metrics "score" (the
selection score, `scoring`) and, for models with probabilities, "neg_log_loss". The
choice breaks near-ties toward the best validation log-loss: with small data many
candidates reach the same accuracy, and the most regularised of them (GridSearchCV's
first) gives probabilities too flat to be useful.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from classify.models import SCORINGS

__all__ = ["SCORINGS", "Choice", "choose", "cv_results", "one_image", "progress_bar"]

SCORE = "score"
LOG_LOSS = "neg_log_loss"
# A search shows its bar once it has run this long (tqdm's `delay`).
PROGRESS_DELAY_S = 2.0


def cv_results(
    params: Sequence[Mapping[str, Any]],
    scores: Mapping[str, np.ndarray],
    fit_times: np.ndarray,
    score_times: np.ndarray,
) -> dict[str, Any]:
    """GridSearchCV's `cv_results_` from per-candidate, per-fold tables.

    scikit-learn formats its own in a private method, so the schema is written out here.

    Parameters
    ----------
    params : sequence of dict
        The candidates, in the order of the tables' rows.
    scores : mapping of str to ndarray of shape (n_candidates, n_folds)
        Each metric's validation scores.
    fit_times, score_times : ndarray of shape (n_candidates, n_folds)
        Seconds spent fitting and scoring.

    Returns
    -------
    dict
        Times, `param_*` columns, `params`, and per metric the `split*_test_*`, `mean_`,
        `std_` and `rank_test_*` columns.
    """
    from scipy.stats import rankdata

    results: dict[str, Any] = {}
    for key, times in (("fit_time", fit_times), ("score_time", score_times)):
        results[f"mean_{key}"] = times.mean(axis=1)
        results[f"std_{key}"] = times.std(axis=1)
    for name in sorted({key for candidate in params for key in candidate}):
        column = np.ma.masked_all(len(params), dtype=object)
        for i, candidate in enumerate(params):
            if name in candidate:
                column[i] = candidate[name]
        results[f"param_{name}"] = column
    results["params"] = [dict(candidate) for candidate in params]
    for metric, table in scores.items():
        table = np.asarray(table, dtype=np.float64)
        for fold in range(table.shape[1]):
            results[f"split{fold}_test_{metric}"] = table[:, fold]
        means = table.mean(axis=1)
        results[f"mean_test_{metric}"] = means
        results[f"std_test_{metric}"] = table.std(axis=1)
        results[f"rank_test_{metric}"] = rankdata(-np.nan_to_num(means, nan=-np.inf),
                                                  method="min").astype(np.int32)
    return results


@dataclass(frozen=True)
class Choice:
    """The chosen candidate and, when a near-tie was broken, how."""

    index: int
    tie_break: str | None


def one_image(folds: Sequence[tuple[np.ndarray, np.ndarray]]) -> float:
    """How far one validation image can move a mean over folds of an accuracy.

    Parameters
    ----------
    folds : sequence of (train, test) index arrays
        The search's folds.

    Returns
    -------
    float
        One of the smallest fold's images: 1 / (folds x its size).
    """
    return 1.0 / (len(folds) * min(len(test) for _, test in folds))


def choose(results: Mapping[str, Any], scoring: str, tolerance: float) -> Choice:
    """The best mean score; among candidates within `tolerance` of it, the one with the
    best mean validation log-loss when there is one.

    It reads `cv_results_` alone, as GridSearchCV's `refit` callable does; its index is
    what such a callable would return, and it also says how a near-tie was broken.

    Parameters
    ----------
    results : mapping
        A `cv_results_` with "mean_test_score" and, optionally, "mean_test_neg_log_loss".
    scoring : str
        The selection score's name; "neg_log_loss" breaks no ties.
    tolerance : float
        How close to the best counts as a tie: one validation image (`one_image`).

    Returns
    -------
    Choice
        The chosen candidate's index and the tie-break, or None.
    """
    means = np.nan_to_num(np.asarray(results[f"mean_test_{SCORE}"]), nan=-np.inf)
    best = int(np.argmax(means))
    losses = results.get(f"mean_test_{LOG_LOSS}")
    if scoring == LOG_LOSS or losses is None:
        return Choice(best, None)
    tied = np.flatnonzero(means >= means[best] - tolerance * (1 + 1e-9))
    if len(tied) < 2:
        return Choice(best, None)
    chosen = int(tied[np.argmax(np.nan_to_num(np.asarray(losses)[tied], nan=-np.inf))])
    return Choice(
        chosen,
        f"{len(tied)} candidates score within one validation image of the best {scoring} "
        f"({means[best]:.4f}); chose the best mean validation log-loss among them",
    )


def progress_bar(total: int, enabled: bool, description: str, unit: str = "fit") -> Any:
    """A bar over the search's fits (or a fit's `unit`s) with an ETA.

    It shows once it has run PROGRESS_DELAY_S; tqdm hides it when stderr is not a
    terminal.

    Parameters
    ----------
    total : int
        How many updates make it full.
    enabled : bool
        False: never shown.
    description : str
        The text before the bar ("search", "fit").
    unit : str
        What one update counts.

    Returns
    -------
    tqdm.tqdm
        The bar, a context manager; leaves no line behind when closed.
    """
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit=unit, dynamic_ncols=True,
                disable=None if enabled else True, delay=PROGRESS_DELAY_S, leave=False)
