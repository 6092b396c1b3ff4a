"""What the pages show of a run's settings (issue 26, item 15): parameters as report.txt
writes them, no blank rows, one row per extractor."""

from __future__ import annotations

import re
from pathlib import Path

from classify.report.html import write_run_report
from tests.helpers.classifying import run
from tests.helpers.featurefiles import write_feature_file


def _cells(html: str, heading: str) -> list[list[str]]:
    """The text of every cell of the table after `heading`, row by row."""
    table = html[html.index(heading):]
    table = table[:table.index("</table>")]
    return [re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row) for row in table.split("<tr>")[1:]]


def test_index_shows_parameters_as_the_text_report_does(feature_file: Path,
                                                         outputs: Path) -> None:
    for grid in (["--grid", "C=1000.0"], ["--grid", "C=10"], []):
        result = run(outputs, "--features", str(feature_file), "--jobs", "1", *grid)
        assert result.exit_code == 0, result.output
    header, *rows = _cells((outputs / "index.html").read_text(encoding="utf-8"), "All runs")
    params = sorted(row[header.index("params")] for row in rows)
    assert params == ["C=10", "C=1000", "defaults"], params


def test_run_page_without_a_grid_says_no_search_and_has_no_blank_rows(
    feature_file: Path, outputs: Path
) -> None:
    result = run(outputs, "--features", str(feature_file), "--jobs", "1")
    assert result.exit_code == 0, result.output
    page = next((outputs / "reports").glob("*/index.html")).read_text(encoding="utf-8")
    settings = page[page.index('id="settings"'):page.index('id="classes"')]
    assert "<td></td>" not in settings
    assert "cv_score" not in settings and "<td>cv</td>" not in settings
    assert "<td>search</td><td>none (no --grid): library defaults fitted once</td>" in settings


def test_a_fused_run_lists_its_extractors_one_row_each(outputs: Path) -> None:
    a = write_feature_file(outputs / "features" / "toy-vgg16-avg.h5")
    b = write_feature_file(outputs / "features" / "toy-resnet50-max.h5", seed=1,
                           attrs={"backbone": "resnet50", "pooling": "max"})
    result = run(outputs, "--features", str(a), "--features", str(b), "--jobs", "1")
    assert result.exit_code == 0, result.output
    page = next((outputs / "reports").glob("*/index.html")).read_text(encoding="utf-8")
    assert "backbone=" not in page
    header, *rows = _cells(page, '<table class="extractors records">')
    assert [[row[header.index(c)] for c in ("features", "backbone", "pooling")]
            for row in rows] == [[str(a), "vgg16", "avg"], [str(b), "resnet50", "max"]]


def test_a_parameter_searched_over_none_shows_none(tmp_path: Path) -> None:
    page = write_run_report(
        tmp_path, title="toy / rf",
        settings={"grid": {"max_depth": [None, 10]}, "best_params": {"max_depth": None}},
        label_names=["a", "b"], y_true=[0, 1], y_pred=[0, 1], confidence=None,
        test_paths=["a/1.jpg", "b/2.jpg"], image_root=None,
    ).read_text(encoding="utf-8")
    assert "<td>max_depth</td><td>None, 10</td>" in page
    assert "<td>max_depth</td><td>None</td>" in page
