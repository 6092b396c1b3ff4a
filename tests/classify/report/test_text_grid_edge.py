"""report.txt's search section says when the chosen value is the smallest or largest the
grid tried: the search compared it with nothing beyond."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.classifying import only, run

EDGE = "grid edge   C=1 is the smallest searched; values beyond it were not tried"


def search(outputs: Path, feature_file: Path, grid: str) -> str:
    result = run(outputs, "--features", str(feature_file), "--jobs", "1", "--grid", grid)
    assert result.exit_code == 0, result.output
    return result.output


def test_a_choice_at_the_grid_s_edge_is_said_in_the_report_and_on_the_page(
        feature_file: Path, outputs: Path) -> None:
    """Separable rows: C=1, 10 and 100 all score 1.0, and the tie-break takes C=1."""
    printed = search(outputs, feature_file, "C=1,10,100")
    assert "chosen      C=1\n" in printed
    assert EDGE + "\n" in printed
    report = only(outputs / "reports")
    assert EDGE + "\n" in (report / "report.txt").read_text()
    assert ("<td>grid edge</td><td>C=1 is the smallest searched; values beyond it were not "
            "tried</td>") in (report / "index.html").read_text()


def test_a_choice_inside_the_grid_or_between_two_values_is_not_remarked(
        feature_file: Path, outputs: Path) -> None:
    printed = search(outputs / "inside", feature_file, "C=0.0001,1,10000")
    assert "chosen      C=1\n" in printed and "grid edge" not in printed
    # With two values every choice is an edge: no line.
    assert "grid edge" not in search(outputs / "two", feature_file, "C=0.01,0.1")
