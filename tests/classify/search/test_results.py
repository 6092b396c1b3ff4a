"""The choice among candidates: near ties go to the best validation log-loss."""

from __future__ import annotations

import numpy as np
import pytest

from classify.search import results


def test_near_ties_go_to_the_best_validation_log_loss() -> None:
    folds = [(np.arange(60), np.arange(30))] * 3  # one image: 1 / (3 x 30)
    tolerance = results.one_image(folds)
    assert tolerance == pytest.approx(1 / 90)
    table = {"mean_test_score": np.array([0.90, 1.0, 1.0 - 1 / 90, 0.97]),
             "mean_test_neg_log_loss": np.array([-0.1, -0.9, -0.3, -0.05])}
    choice = results.choose(table, "accuracy", tolerance)
    assert choice.index == 2  # within one image of the best, better log-loss than it
    assert "2 candidates score within one validation image" in choice.tie_break
    assert "log-loss" in choice.tie_break
    assert results.choose(table, "neg_log_loss", tolerance) == results.Choice(1, None)
    alone = {"mean_test_score": np.array([0.5, 1.0]), "mean_test_neg_log_loss": np.zeros(2)}
    assert results.choose(alone, "accuracy", tolerance) == results.Choice(1, None)
