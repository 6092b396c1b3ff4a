"""The run page names its settings in words, not as the code's keys, says "chosen" for the
search's choice, and speaks of val scores where the search had the given val part as its
one fold (new-user pass, findings 10 and 13e)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.helpers.classifying import only, run
from tests.helpers.featurefiles import write_feature_file
from tests.helpers.layouts import write_split_file

LITE = "extract.efficientnet_lite.preprocess_input"
# A label: a table's heading, or the first cell of a settings row (the extractors' rows,
# after the sections, hold values only).
LABEL = re.compile(r"<th[^>]*>([^<]*)</th>|<tr><td>([^<]*)</td><td>")
HEADING = re.compile(r"<th[^>]*>([^<]*)</th>")


def _settings(outputs: Path, *args: str) -> str:
    result = run(outputs, *args, "--jobs", "1", "--grid", "C=0.1,1")
    assert result.exit_code == 0, result.output
    page = (only(outputs / "reports") / "index.html").read_text(encoding="utf-8")
    return page[page.index('id="settings"'):page.index('id="classes"')]


def test_the_run_page_names_settings_in_words(outputs: Path) -> None:
    features = write_feature_file(outputs / "features" / "toy-efficientnet_lite0-avg.h5",
                                  attrs={"backbone": "efficientnet_lite0",
                                         "preprocessing": LITE})
    settings = _settings(outputs, "--features", str(features))
    sections, extractors = settings.split('<div class="scroll">')
    labels = [heading or row for heading, row in LABEL.findall(sections)]
    labels += HEADING.findall(extractors)
    assert "model" in labels and [label for label in labels if "_" in label] == []
    for row in ("<td>test size</td><td>0.25</td>", "<td>training images</td><td>90</td>",
                "<td>test images</td><td>30</td>", "<td>cv folds</td><td>3</td>",
                '<th colspan="2">chosen</th>'):
        assert row in settings
    assert re.search(r"<td>cv accuracy</td><td>\d\.\d{4}</td>", settings)
    assert "<th>input size</th>" in settings and "<th>format version</th>" in settings
    assert f'<td title="{LITE}">efficientnet_lite</td>' in settings
    assert f">{LITE}<" not in settings


def test_a_search_on_the_given_val_part_shows_a_val_score(tmp_path: Path) -> None:
    split = (["train"] * 6 + ["val"] * 3 + ["test"] * 3) * 3
    features = write_split_file(tmp_path / "split-vgg16-avg.h5", split, [12, 12, 12])
    settings = _settings(tmp_path / "outputs", "--features", str(features))
    assert re.search(r"<td>val accuracy</td><td>\d\.\d{4}", settings)
    assert "<td>val images (in training)</td><td>9</td>" in settings
    assert "cv accuracy" not in settings and "cv folds" not in settings
