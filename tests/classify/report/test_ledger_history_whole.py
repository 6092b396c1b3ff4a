"""`classify --history` shows every value whole, within 100 columns (issue 26, items 3
and 15): a long value wraps inside its column instead of being cut."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from classify.report.ledger import FIELDS
from tests.helpers.classifying import run

LONG = {
    "time": "2026-12-01T12:22:25+00:00", "model": "logreg+scale", "accuracy": "0.912345",
    "macro_f1": "0.9", "backbone": "efficientnet_lite2 + resnet50", "pooling": "avg + max",
    "weights": "imagenet + imagenet", "seconds": "1.0",
    "params": json.dumps({"C": 0.001, "max_iter": 1000, "tol": 1e-6}),
    "features": ("outputs/features/caltech101_subset-efficientnet_lite2-avg-0123abcd.h5 + "
                 "outputs/features/caltech101_subset-resnet50-max-4567cdef.h5"),
    "report": "outputs/reports/long",
}
FOREST = {
    **LONG, "model": "rf", "accuracy": "0.8", "backbone": "efficientnet_lite0",
    "pooling": "avg", "weights": "imagenet", "report": "outputs/reports/forest",
    "params": json.dumps({"max_depth": None, "n_estimators": 200}),
    "features": "outputs/features/flowers5-efficientnet_lite0-avg-b367d929.h5",
}


def _columns(lines: list[str]) -> list[dict[str, str]]:
    """Each run's cells, a wrapped cell's lines joined by a space, read by the columns the
    rule line marks; a run ends at its report line."""
    header, rule, *body = lines
    spans = [(m.start(), m.end()) for m in re.finditer(r"-+", rule)]
    runs: list[dict[str, list[str]]] = [{}]
    for line in body:
        if line.strip().startswith("outputs/reports/"):
            runs.append({})
            continue
        for name, (left, right) in zip(header.split(), spans):
            piece = line[left:right].strip()
            if piece:
                runs[-1].setdefault(name, []).append(piece)
    return [{name: " ".join(parts) for name, parts in cells.items()} for cells in runs[:-1]]


def test_history_wraps_long_values_whole_within_100_columns(outputs: Path) -> None:
    with (outputs / "results.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows([LONG, FOREST])
    result = run(outputs, "--history")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    table = lines[2:2 + next(i for i, line in enumerate(lines[2:]) if not line.strip())]
    assert all(len(line) <= 100 for line in table), result.output
    assert "…" not in result.output
    long, forest = _columns(table)
    assert long["params"] == "C=0.001, max_iter=1000, tol=1e-06"
    assert long["extractor"] == "efficientnet_lite2 avg + resnet50 max"
    assert long["dataset"] == "caltech101_subset"
    assert forest["params"] == "max_depth=None, n_estimators=200"
    assert forest["extractor"] == "efficientnet_lite0 avg"
