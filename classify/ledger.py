"""outputs/results.csv: one row per `classify` run, so experiments on cached features compare."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path

from classify.records import LedgerRow

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
HISTORY_COLUMNS = (
    "accuracy",
    "macro_f1",
    "model",
    "params",
    "backbone",
    "pooling",
    "weights",
    "features",
    "time",
    "seconds",
)


class LedgerError(ValueError):
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


def _cell(column: str, value: str | None) -> str:
    value = value or ""
    if column in ("accuracy", "macro_f1"):
        try:
            return f"{float(value):.4f}"
        except ValueError:
            return value
    if column == "seconds":
        try:
            return f"{float(value):.1f}"
        except ValueError:
            return value
    if column == "features":  # a fused run's files are joined by " + "
        return " + ".join(Path(part).name for part in value.split(" + "))
    return value


def format_table(
    rows: Sequence[Mapping[str, str]], columns: Sequence[str] = HISTORY_COLUMNS
) -> str:
    """A plain-text table with aligned columns, one line per run."""
    cells = [[_cell(c, row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(line[i]) for line in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() for line in cells]
    return "\n".join(lines)
