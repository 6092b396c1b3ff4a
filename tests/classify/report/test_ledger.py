"""The ledger's history table: rows fit 100 columns whatever they hold."""

from __future__ import annotations

import json


def test_history_rows_fit_100_columns_even_with_long_values() -> None:
    from classify.report.ledger import format_table

    row = {"accuracy": "0.912345", "macro_f1": "0.9", "model": "logreg+scale",
           "params": json.dumps({"C": 0.001, "max_iter": 1000, "tol": 1e-6}),
           "backbone": "efficientnet_lite2 + resnet50", "pooling": "avg + max",
           "features": "outputs/features/caltech101_subset-efficientnet_lite2-avg-0123abcd.h5",
           "time": "2026-12-01T12:22:25+00:00", "report": "outputs/reports/run"}
    lines = format_table([row] * 12).splitlines()
    assert all(len(line) <= 100 for line in lines), "\n".join(lines)
    # Long values wrap whole onto the lines below (issue 26): nothing is cut.
    assert lines[2].split()[:6] == ["1", "0.9123", "logreg+scale", "C=0.001,",
                                    "caltech101_subset", "efficientnet_lite2"]
    assert lines[3].split() == ["max_iter=1000,", "avg", "+", "resnet50", "max"]
    assert lines[4].split() == ["tol=1e-06"]
    assert lines[5] == "    outputs/reports/run"
    assert "…" not in "\n".join(lines)
