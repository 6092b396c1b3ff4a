"""`classify --history` and outputs/index.html rank a run of several draws (--repeats) by
the mean over its draws, which they show, not by its first draw; results files written
before the mean was recorded still load (new-user pass, finding 13h)."""

from __future__ import annotations

import csv
import re
from dataclasses import replace
from pathlib import Path

from classify.report.ledger import FIELDS, append_row, ledger_row
from classify.report.records import Draw, ProtocolRecord
from tests.helpers.classifying import run
from tests.helpers.run_records import metrics

PER_CLASS = ProtocolRecord("per_class", "8 per class", train_per_class=8, test_per_class=3,
                           repeats=3)
DRAWS = [Draw(42, 40, 15, 1.0, 1.0), Draw(43, 40, 15, 0.9333, 0.9333),
         Draw(44, 40, 15, 0.9333, 0.9333)]


def _accuracy_cells(output: str) -> list[str]:
    """The accuracy cell of each numbered run of --history's table."""
    return [re.split(r"\s{2,}", line.strip())[1] for line in output.splitlines()
            if line[:3].strip().isdigit()]


def test_a_repeated_run_ranks_and_shows_by_its_mean(outputs: Path) -> None:
    repeated = metrics(accuracy=1.0, protocol=PER_CLASS, draws=DRAWS,
                       balanced_accuracy_mean=0.9556, balanced_accuracy_std=0.0314,
                       report_dir="outputs/reports/repeated")
    single = metrics(accuracy=0.97, report_dir="outputs/reports/single")
    for run_metrics in (repeated, single):
        append_row(outputs / "results.csv", ledger_row(run_metrics))
    result = run(outputs, "--history")
    assert result.exit_code == 0, result.output
    assert _accuracy_cells(result.output) == ["0.9700", "0.9555 ± 0.0314"]
    page = (outputs / "index.html").read_text(encoding="utf-8")
    runs = page[page.index("All runs"):]
    assert runs.index(">0.9700<") < runs.index(">0.9555 ± 0.0314<")


def test_an_older_results_file_without_means_loads_and_gains_the_columns(
        outputs: Path) -> None:
    old = [name for name in FIELDS if not name.startswith("accuracy_")]
    path = outputs / "results.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=old)
        writer.writeheader()
        for accuracy, report in (("1.000000", "first-draw"), ("0.970000", "other")):
            row = ledger_row(metrics(report_dir=f"outputs/reports/{report}"))
            writer.writerow({**{name: getattr(row, name) for name in old},
                             "accuracy": accuracy, "params": "{}"})
    result = run(outputs, "--history")
    assert result.exit_code == 0, result.output
    assert _accuracy_cells(result.output) == ["1.0000", "0.9700"]
    append_row(path, replace(ledger_row(metrics(accuracy=0.5)), report="new"))
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["accuracy"], row["accuracy_mean"]) for row in rows] == [
        ("1.000000", ""), ("0.970000", ""), ("0.500000", "")]
