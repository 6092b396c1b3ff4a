"""outputs/results.csv: one row per `classify` run, so experiments on cached features compare."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from classify.report.records import LedgerRow, Metrics
from common.errors import UserError
from common.text import table

FIELDS = (
    "time",
    "features",
    "backbone",
    "pooling",
    "weights",
    "model",
    "params",
    "accuracy",
    "macro_f1",
    "seconds",
    "report",
)
# --history's columns and the most characters each may take, so that a line fits in 100
# columns; each run's report path follows on a line of its own. Macro F1 and the weights
# are in outputs/index.html and each report.
HISTORY_COLUMNS = {
    "accuracy": 8,
    "model": 12,
    "params": 14,
    "dataset": 12,
    "extractor": 22,
    "time": 16,
}


class LedgerError(UserError, ValueError):
    """The results file cannot be read; the message names it."""


def append_row(path: Path, record: LedgerRow) -> None:
    """Append one run, writing the header first when the file is new."""
    row = {**asdict(record), "accuracy": f"{record.accuracy:.6f}",
           "macro_f1": f"{record.macro_f1:.6f}", "seconds": f"{record.seconds:.2f}"}
    path.parent.mkdir(parents=True, exist_ok=True)
    is_new = not path.exists() or path.stat().st_size == 0
    with path.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS, extrasaction="ignore")
        if is_new:
            writer.writeheader()
        writer.writerow(
            {k: json.dumps(v, sort_keys=True) if k == "params" else v for k, v in row.items()}
        )


def read_rows(path: Path) -> list[dict[str, str]]:
    """Every recorded run, best accuracy first."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            header = reader.fieldnames or []
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise LedgerError(f"{path}: unreadable results file ({exc})") from None
    missing = [name for name in ("accuracy", "model") if header and name not in header]
    if missing:
        raise LedgerError(f"{path}: not a results file (no {', '.join(missing)} column)")
    return sorted(rows, key=_accuracy, reverse=True)


def _accuracy(row: Mapping[str, str]) -> float:
    """The row's accuracy; missing or unreadable values sort last."""
    try:
        value = float(row.get("accuracy") or "")
    except ValueError:
        return float("-inf")
    return float("-inf") if math.isnan(value) else value


@dataclass(frozen=True)
class HistoryFilter:
    """What `classify --history` shows: runs of this model, dataset, backbone, pooling
    (None: any)."""

    model: str | None = None
    dataset: str | None = None
    backbone: str | None = None
    pooling: str | None = None

    def describe(self) -> str:
        return " ".join(f"--{name} {value}" for name, value in asdict(self).items()
                        if value is not None)

    def keeps(self, row: Mapping[str, str]) -> bool:
        # A dataset given as a folder (--dataset data/flowers17/) is named by its last part,
        # as extract names the files.
        dataset = None if self.dataset is None else Path(self.dataset.rstrip("/")).name
        wanted = {**asdict(self), "dataset": dataset}
        return all(value is None or value in _values(row, column)
                   for column, value in wanted.items())


def _values(row: Mapping[str, str], column: str) -> set[str]:
    """A row's values in `column`: every fused file's, and a scaled model's base name."""
    if column == "dataset":
        return {dataset_name(row)}
    value = row.get(column) or ""
    if column == "model":
        return {value, value.split("+")[0]}
    return {part.strip() for part in value.split(" + ")}


def dataset_name(row: Mapping[str, str]) -> str:
    """The dataset of a run: its (first) feature file's name up to -<backbone>-, as the
    cache names files; the whole stem for a file named otherwise."""
    name = Path((row.get("features") or "").split(" + ")[0]).name
    backbone = (row.get("backbone") or "").split(" + ")[0]
    cut = name.find(f"-{backbone}-") if backbone else -1
    return name[:cut] if cut > 0 else Path(name).stem


def extractor_name(row: Mapping[str, str]) -> str:
    """Backbone and pooling of each (fused) feature file: "resnet50 avg + vgg16 max"."""
    backbones = (row.get("backbone") or "").split(" + ")
    poolings = (row.get("pooling") or "").split(" + ")
    return " + ".join(f"{b} {p}".strip() for b, p in zip(backbones, poolings))


def _cell(column: str, row: Mapping[str, str]) -> str:
    if column == "dataset":
        return dataset_name(row)
    if column == "extractor":
        return extractor_name(row)
    value = row.get(column) or ""
    if column == "accuracy":
        try:
            return f"{float(value):.4f}"
        except ValueError:
            return value
    if column == "params":
        try:
            params = json.loads(value)
        except ValueError:
            return value
        if not params:
            return "defaults"
        return ", ".join(f"{key}={params[key]:g}" if isinstance(params[key], float)
                         else f"{key}={params[key]}" for key in sorted(params))
    if column == "time":
        return value.replace("T", " ")[:16]
    return value


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def format_table(rows: Sequence[Mapping[str, str]]) -> str:
    """One line per run (numbered, columns capped to fit 100 characters), then the path
    of its report, indented, on the next."""
    cells = [[str(index), *(_fit(_cell(c, row), cap) for c, cap in HISTORY_COLUMNS.items())]
             for index, row in enumerate(rows, start=1)]
    header, rule, *lines = table(cells, ["", *HISTORY_COLUMNS], rule=True, right={0})
    out = [header, rule]
    number = len(str(len(rows)))
    for row, line in zip(rows, lines):
        out.append(line)
        report = row.get("report") or ""
        if report:
            page = Path(report) / "index.html"
            out.append(" " * number + f"  {page if page.is_file() else report}")
    return "\n".join(out)


def ledger_row(metrics: Metrics) -> LedgerRow:
    """The results.csv row of a run, taken from its metrics so the two always agree."""
    def joined(key: str) -> str:  # a fused run names every file's setting, in order
        return " + ".join(str(source.extractor[key]) for source in metrics.features)

    return LedgerRow(
        time=metrics.created,
        features=" + ".join(source.path for source in metrics.features),
        backbone=joined("backbone"), pooling=joined("pooling"), weights=joined("weights"),
        model=metrics.model + ("+scale" if metrics.scale else ""),
        params=metrics.best_params, accuracy=metrics.accuracy, macro_f1=metrics.macro_f1,
        seconds=sum(metrics.timings.values()), report=metrics.report_dir,
    )  # fmt: skip
