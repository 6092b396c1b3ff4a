"""results.choose among near-ties: the most regularised C whose validation log-loss is
within LOG_LOSS_TOLERANCE of the best, so that where the solvers stop along the flat
tail of the log-loss (large C, separable rows) moves nothing."""

from __future__ import annotations

import numpy as np

from classify.search import results

CS = [0.0001, 0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0]
FOLDS = [(np.arange(75), np.arange(37))] * 3  # one validation image: 1 / (3 x 37)
# The search of 5 flowers17 classes x 30 photos (efficientnet_lite0 features): every C
# from 0.001 up at accuracy 1.0 and the log-loss falling with C to the grid's end, where
# newton-cg (local) and L-BFGS-B (cluster) stop at different points.
ACCURACY = [0.7518, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
LOCAL = [1.5563, 1.1879, 0.4305, 0.1201, 0.0408, 0.0185, 0.0120, 0.0096]
CLUSTER = [1.5563, 1.1879, 0.4305, 0.1201, 0.0409, 0.0187, 0.0100, 0.0100]


def cv_results(params: list[dict], scores: list[float], log_losses: list[float]) -> dict:
    return {"params": params, "mean_test_score": np.array(scores),
            "mean_test_neg_log_loss": -np.array(log_losses)}


def test_the_flat_tail_goes_to_the_most_regularised_c_locally_and_on_the_cluster() -> None:
    chosen = []
    for log_losses in (LOCAL, CLUSTER):
        table = cv_results([{"C": C} for C in CS], ACCURACY, log_losses)
        choice = results.choose(table, "accuracy", results.one_image(FOLDS))
        chosen.append(CS[choice.index])
        assert choice.tie_break.startswith(
            "7 candidates score within one validation image of the best accuracy (1.0000); "
            "of the 4 whose mean validation log-loss is within 0.05 of their best (")
        assert choice.tie_break.endswith("), chose the most regularised")
    assert chosen == [1.0, 1.0]


def test_a_pipeline_s_c_is_ordered_as_the_model_s() -> None:
    table = cv_results([{"model__C": C} for C in (10.0, 1.0, 100.0)], [1.0, 1.0, 1.0],
                       [0.03, 0.06, 0.02])
    assert results.choose(table, "accuracy", 0.01).index == 1  # C=1: 0.06 <= 0.02 + 0.05


def test_candidates_that_differ_in_more_than_c_go_to_the_best_log_loss() -> None:
    """No order says which of them regularises most: the best log-loss decides, as before."""
    knn = cv_results([{"n_neighbors": k} for k in (1, 5, 15)], [1.0, 1.0, 1.0],
                     [0.20, 0.18, 0.17])
    both = cv_results([{"C": 0.1, "max_iter": 100}, {"C": 1.0, "max_iter": 50}],
                      [1.0, 1.0], [0.05, 0.04])
    for table, best in ((knn, 2), (both, 1)):
        choice = results.choose(table, "accuracy", 0.01)
        assert choice.index == best
        assert choice.tie_break.endswith("chose the best mean validation log-loss among them")


def test_only_the_candidates_tied_on_the_score_are_candidates() -> None:
    """The most regularised C within the log-loss tolerance, but never one that scores
    more than one validation image below the best."""
    table = cv_results([{"C": C} for C in (0.01, 0.1, 1.0)], [0.95, 1.0, 1.0],
                       [0.06, 0.07, 0.05])
    assert results.choose(table, "accuracy", 0.01).index == 1
