"""report.txt names the search's choice "chosen", with its own score, and says when the
tie-break took a candidate below the top score; a search validated on the given val part
(one fold) speaks of val scores and prints no spread across folds (new-user pass,
finding 10)."""

from __future__ import annotations

from classify.report.records import ProtocolRecord
from classify.report.text import format_report
from tests.helpers.run_records import CLASSIFICATION, TIE_BREAK, candidates, metrics

GIVEN_WITH_VAL = ProtocolRecord("given", "given split from folders", "folders", n_val=20)


def test_a_tie_broken_choice_is_called_chosen_beside_the_top_score() -> None:
    report = format_report(metrics(), CLASSIFICATION)
    assert "\nbest " not in report
    assert "chosen      C=10\n" in report
    assert "cv accuracy 0.9464 (chosen by the tie-break; the top is 0.9639)\n" in report
    assert f"tie-break   {TIE_BREAK}\n" in report


def test_a_choice_with_the_top_score_says_only_its_score() -> None:
    report = format_report(metrics(best_params={"C": 0.01}, cv_score=0.9639, tie_break=None),
                           CLASSIFICATION)
    assert "chosen      C=0.01\ncv accuracy 0.9639\n" in report


def test_a_search_on_the_given_val_part_shows_val_scores_and_no_std() -> None:
    scores = {0.01: (0.95, 0.0, 0.7545), 10.0: (0.95, 0.0, 0.1427)}
    report = format_report(
        metrics(cv_used=1, protocol=GIVEN_WITH_VAL, n_train=70, n_test=25,
                candidates=candidates(scores), cv_score=0.95, tie_break=None,
                grid={"C": list(scores)}),
        CLASSIFICATION)
    assert "parameters  val accuracy  log-loss  fit s" in report
    assert "C=10        0.9500        0.1427    0.01   <- chosen" in report
    assert "chosen      C=10\nval accuracy 0.9500\n" in report
    assert "std" not in report and "0.0000" not in report and "cv accuracy" not in report
