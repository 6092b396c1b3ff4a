"""The search skeleton every search shares: its progress bar, on a terminal only."""

from __future__ import annotations

import io
import sys

from sklearn.neighbors import KNeighborsClassifier

from classify.search import GridSearch, results
from tests.helpers.searching import Terminal, folds, problem


def test_the_progress_bar_counts_candidates_times_folds_on_a_terminal(monkeypatch) -> None:
    X, y = problem(90, 5, seed=2)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(results, "PROGRESS_DELAY_S", 0.0)
    GridSearch(KNeighborsClassifier(), {"n_neighbors": [1, 3]}, cv=folds(), n_jobs=1).fit(X, y)
    shown = terminal.getvalue()
    assert "search:   0%|" in shown and "0/6 [00:00<?" in shown  # 2 candidates x 3 folds, ETA
    assert shown.endswith("\r")  # cleared once done: the report follows
    hidden = io.StringIO()  # not a terminal: no bar
    monkeypatch.setattr(sys, "stderr", hidden)
    GridSearch(KNeighborsClassifier(), {"n_neighbors": [1, 3]}, cv=folds(), n_jobs=1).fit(X, y)
    assert hidden.getvalue() == ""
