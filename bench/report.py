"""How every benchmark reports: a printed table and outputs/bench/<name>.json."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from common import text

BENCH_DIR = Path("outputs") / "bench"


def machine() -> dict[str, Any]:
    """What the figures were taken on."""
    from common.hardware import cpu_model

    return {
        "cpus": os.cpu_count(),
        "processor": cpu_model(),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def table(rows: list[dict[str, Any]]) -> str:
    """Rows of dicts as an aligned text table (columns in first-seen order)."""
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    cells = [[_cell(row.get(c, "")) for c in columns] for row in rows]
    return "\n".join(text.table(cells, columns, rule=True))


def emit(name: str, figures: dict[str, Any], rows: list[dict[str, Any]], note: str = "") -> Path:
    """Print the table and write every figure, with the machine, as JSON."""
    print(f"\n== {name} ==" + (f"  ({note})" if note else "")
          + f"\n   on {machine()['processor']}, {os.cpu_count()} cores")
    print(table(rows))
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    path = BENCH_DIR / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), "note": note, **figures}, indent=2))
    print(f"-> {path}")
    return path
