"""results.csv's protocol column: a results file from before it existed gains it, with
nothing recorded lost, and new rows line up."""

from __future__ import annotations

import csv
from pathlib import Path

from classify.report.ledger import FIELDS, append_row, read_rows
from classify.report.records import LedgerRow

OLD_FIELDS = [name for name in FIELDS if name != "protocol"]


def row(accuracy: float, protocol: str = "") -> LedgerRow:
    return LedgerRow(time="2026-01-01T00:00:00", features="f.h5", backbone="vgg16",
                     pooling="avg", weights="imagenet", model="logreg", params={"C": 1.0},
                     accuracy=accuracy, macro_f1=accuracy, seconds=1.0, report="r",
                     protocol=protocol)


def test_an_older_results_file_gains_the_column_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=OLD_FIELDS)
        writer.writeheader()
        writer.writerow({**{name: "" for name in OLD_FIELDS}, "model": "svm",
                         "accuracy": "0.5", "report": "old"})
    append_row(path, row(0.9, "given split: folders"))
    header = path.read_text().splitlines()[0].split(",")
    assert header == list(FIELDS)
    new, old = read_rows(path)
    assert (old["model"], old["report"], old["protocol"]) == ("svm", "old", "")
    assert (new["model"], new["protocol"]) == ("logreg", "given split: folders")
    assert not (tmp_path / "results.csv.tmp").exists()
