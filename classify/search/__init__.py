"""Hyper-parameter searches as scikit-learn estimators.

`fit(X, y)` returns the search; `cv_results_` (GridSearchCV's schema), `best_params_`,
`best_score_` and `best_estimator_` (refitted on all of X) are its results.
`make_search` picks the C path search for an L2 logistic regression over C alone
(classify.search.logreg), GridSearchCV's candidates x folds otherwise
(classify.search.grid). ClusterSearch (classify.search.on_dask) is the same search on
Dask arrays that live on a cluster's workers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from classify.search import logreg
from classify.search.grid import GridSearch
from classify.search.logreg import LogisticPathSearch
from classify.search.on_dask import ClusterSearch
from classify.search.results import SCORINGS

__all__ = ["SCORINGS", "ClusterSearch", "GridSearch", "LogisticPathSearch", "make_search"]


def make_search(
    estimator: Any,
    grid: Mapping[str, Sequence[Any]],
    *,
    scoring: str,
    cv: Any,
    n_jobs: int | None,
    progress: bool = True,
) -> GridSearch | LogisticPathSearch:
    """The search for `estimator` over `grid`.

    Parameters
    ----------
    estimator : estimator
        The model searched.
    grid : mapping of str to sequence
        Values of the estimator's own parameters, by name.
    scoring, cv, n_jobs, progress
        As for GridSearch.

    Returns
    -------
    GridSearch or LogisticPathSearch
        The C path search for an L2 logistic regression over C alone (`logreg.applies`),
        GridSearch otherwise; not fitted yet.
    """
    if logreg.applies(estimator, grid):
        return LogisticPathSearch(estimator, list(grid["C"]), scoring=scoring, cv=cv,
                                  n_jobs=n_jobs, progress=progress)
    return GridSearch(estimator, grid, scoring=scoring, cv=cv, n_jobs=n_jobs, progress=progress)
