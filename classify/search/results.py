"""What every search leaves behind and how it chooses, shared by all searches.

`cv_results_` follows GridSearchCV's multi-metric schema with the metrics "score" (the
selection score, `scoring`) and, for models with probabilities, "neg_log_loss". The
choice breaks near-ties by the validation log-loss: with small data many candidates
reach the same accuracy, and the most regularised of them (GridSearchCV's first) gives
probabilities too flat to be useful. The least regularised is no better: on separable
rows the log-loss keeps falling as C grows, so its minimum sits at the grid's largest C,
whose model is sure of everything, images of classes it never saw included; and along
that flat tail the differences are the solvers' stopping points, so a cluster's L-BFGS
and a local newton-cg picked different C values. Among the near-ties, the most
regularised candidate whose log-loss is within LOG_LOSS_TOLERANCE of their best wins.

What counts as a near-tie on the score is the larger of one validation image and the
best candidate's standard deviation across folds (the one-standard-deviation rule of
scikit-learn's `refit=callable` example). One image alone is the very step by which two
solvers' accuracies differ at the same C, so the set of near-ties, and with it the
choice, moved with the solver; the log-loss, continuous, moves far less than its
tolerance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np

from classify.models import SCORINGS

__all__ = ["SCORINGS", "Choice", "choose", "cv_results", "grid_edges", "one_image",
           "progress_bar"]

SCORE = "score"
LOG_LOSS = "neg_log_loss"
# Mean validation log-losses this close count as equal: a true-class probability within
# 5% of the best candidate's (geometric mean over the validation images), well above
# the solvers' differences along a flat tail and below a decade of C's step before it.
LOG_LOSS_TOLERANCE = 0.05
# Parameters whose smaller values regularise more (scikit-learn's inverse strength),
# by their name in the estimator (a pipeline's "model__C" included).
INVERSE_STRENGTHS = ("C",)
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
    """The best mean score; among the candidates within `tolerance` of it, or within the
    best's standard deviation across folds where that is larger, the most regularised one
    whose mean validation log-loss is within LOG_LOSS_TOLERANCE of their best, when there
    is a log-loss.

    It reads `cv_results_` alone, as GridSearchCV's `refit` callable does; its index is
    what such a callable would return, and it also says how a near-tie was broken.
    "Most regularised" needs the candidates within the log-loss tolerance to differ in
    an inverse strength (INVERSE_STRENGTHS) alone; otherwise the best log-loss wins.

    Parameters
    ----------
    results : mapping
        A `cv_results_` with "mean_test_score" and, optionally, "std_test_score",
        "mean_test_neg_log_loss" and "params".
    scoring : str
        The selection score's name; "neg_log_loss" breaks no ties.
    tolerance : float
        The least that counts as a tie: one validation image (`one_image`).

    Returns
    -------
    Choice
        The chosen candidate's index and the tie-break, or None.
    """
    means = np.nan_to_num(np.asarray(results[f"mean_test_{SCORE}"]), nan=-np.inf)
    best = int(np.argmax(means))
    neg_losses = results.get(f"mean_test_{LOG_LOSS}")
    if scoring == LOG_LOSS or neg_losses is None:
        return Choice(best, None)
    stds = results.get(f"std_test_{SCORE}")
    spread = float(np.nan_to_num(stds[best])) if stds is not None else 0.0
    window = max(tolerance, spread)
    tied = np.flatnonzero(means >= means[best] - window * (1 + 1e-9))
    if len(tied) < 2:
        return Choice(best, None)
    losses = np.nan_to_num(-np.asarray(neg_losses, dtype=np.float64), nan=np.inf)
    lowest = int(tied[np.argmin(losses[tied])])
    within = ("one validation image" if spread <= tolerance
              else f"one standard deviation ({spread:.4f})")
    tie = f"{len(tied)} candidates score within {within} of the best {scoring} ({means[best]:.4f})"
    near = tied[losses[tied] <= losses[lowest] + LOG_LOSS_TOLERANCE]
    order = _most_regularised_first(results.get("params"), near)
    if order is None or not np.isfinite(losses[lowest]):
        return Choice(lowest, f"{tie}; chose the best mean validation log-loss among them")
    return Choice(int(order[0]),
                  f"{tie}; of the {len(near)} whose mean validation log-loss is within "
                  f"{LOG_LOSS_TOLERANCE:g} of their best ({losses[lowest]:.4f}), chose the "
                  f"most regularised")


def _most_regularised_first(params: Sequence[Mapping[str, Any]] | None, rows: np.ndarray
                            ) -> np.ndarray | None:
    """`rows` (candidate indices) from the most regularised, when there are several and
    they differ in one inverse strength alone (numbers); None otherwise."""
    if params is None or len(rows) < 2:
        return None
    names = set().union(*(params[i] for i in rows))
    varying = [name for name in names if len({repr(params[i].get(name)) for i in rows}) > 1]
    if len(varying) != 1 or varying[0].rpartition("__")[2] not in INVERSE_STRENGTHS:
        return None
    values = [params[i][varying[0]] for i in rows]
    if not all(_is_number(value) for value in values):
        return None
    return rows[np.argsort(values, kind="stable")]


def grid_edges(grid: Mapping[str, Sequence[Any]], chosen: Mapping[str, Any]) -> str | None:
    """Which chosen values are the smallest or largest their grid tried, in words.

    A value at the grid's edge was never compared with one beyond it: the trend that
    chose it may go on. Only parameters with three or more numbers searched count (with
    two, every choice is an edge).

    Parameters
    ----------
    grid : mapping of str to sequence
        The values searched, by parameter.
    chosen : mapping of str to value
        The chosen candidate's parameters.

    Returns
    -------
    str or None
        E.g. "C=1000 is the largest searched; values beyond it were not tried", or None.
    """
    edges = []
    for name, values in grid.items():
        numbers = {value for value in values if _is_number(value)}
        value = chosen.get(name)
        if len(numbers) < 3 or not _is_number(value):
            continue
        side = "largest" if value == max(numbers) else "smallest" if value == min(numbers) else ""
        if side:
            shown = f"{value:g}" if isinstance(value, float) else str(value)
            edges.append(f"{name}={shown} is the {side} searched")
    if not edges:
        return None
    beyond = "it" if len(edges) == 1 else "them"
    return "; ".join(edges) + f"; values beyond {beyond} were not tried"


def _is_number(value: Any) -> bool:
    """A real number, not a bool (True and False are ints to Python)."""
    return isinstance(value, Real) and not isinstance(value, bool)


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
