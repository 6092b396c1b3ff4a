"""The inspection page names its settings in words, as the run page does (new-user pass,
finding 13e)."""

from __future__ import annotations

import re
from pathlib import Path

from classify.inspection.findings import Inspection
from classify.inspection.page import MapData, write_inspection_page

SETTINGS = {"near_duplicates": "cosine distance <= 0.38 x each image's distance to its 10th "
                               "neighbour, similarity >= 0.8",
            "split": "stratified, test size 0.25, seed 42",
            "label_errors": "cleanlab find_label_issues on 5-fold out-of-fold logistic "
                            "regression (C=1.0)",
            "outliers": "5th neighbour in the class, modified z-score > 3.5",
            "map": "t-SNE of 2 images", "seed": 42}


def test_the_settings_table_names_each_setting_in_words(tmp_path: Path) -> None:
    inspection = Inspection("outputs/features/toy-vgg16-avg.h5", "2026-12-05T12:00:00", 2,
                            ["a", "b"], SETTINGS)
    data = MapData(None, 2, ["a", "b"], [0, 1], [0.0, 1.0], [0.0, 1.0], [0, 1], {})
    page = write_inspection_page(tmp_path / "inspect", inspection, data, ["a/1.jpg", "b/2.jpg"],
                                 None, tmp_path / "index.html").read_text(encoding="utf-8")
    labels = re.findall(r"<tr><td>([^<]*)</td><td>", page)
    assert labels == ["near-duplicates", "split", "label errors", "outliers", "map", "seed"]
