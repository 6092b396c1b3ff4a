"""outputs/results.csv: one row per `classify` run, so experiments on cached features compare."""

from __future__ import annotations

import csv
import json
import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

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
    "accuracy_mean",  # --repeats: over the draws; what ranks the run
    "accuracy_std",
    "macro_f1",
    "seconds",
    "report",
    "protocol",
)
# --history's columns; each run's report path follows on a line of its own. Macro F1 and
# the weights are in outputs/index.html and each report.
HISTORY_COLUMNS = ("accuracy", "model", "params", "dataset", "extractor", "time")
# The columns that share what the others leave of HISTORY_WIDTH, wrapping a long value
# onto lines of its own below rather than cutting it.
WRAPPED_COLUMNS = ("params", "dataset", "extractor", "time")
HISTORY_WIDTH = 100


class LedgerError(UserError, ValueError):
    """The results file cannot be read; the message names it."""


def append_row(path: Path, record: LedgerRow) -> None:
    """Append one run, writing the header first when the file is new."""
    row = {**asdict(record), "accuracy": f"{record.accuracy:.6f}",
           "macro_f1": f"{record.macro_f1:.6f}", "seconds": f"{record.seconds:.2f}",
           **{name: "" if value is None else f"{value:.6f}"
              for name, value in (("accuracy_mean", record.accuracy_mean),
                                  ("accuracy_std", record.accuracy_std))}}
    path.parent.mkdir(parents=True, exist_ok=True)
    is_new = not path.exists() or path.stat().st_size == 0
    header = list(FIELDS) if is_new else _with_every_field(path)
    with path.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, extrasaction="ignore")
        if is_new:
            writer.writeheader()
        writer.writerow(
            {k: json.dumps(v, sort_keys=True) if k == "params" else v for k, v in row.items()}
        )


def _with_every_field(path: Path) -> list[str]:
    """The header of an existing results file, every one of FIELDS in it: a file from
    before a column existed is rewritten with it (its rows leave it empty), aside and then
    renamed, so that nothing recorded is lost and new rows line up."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = list(reader.fieldnames or [])
        missing = [name for name in FIELDS if name not in header]
        rows = list(reader) if missing else []
    if not missing:
        return header
    header += missing
    aside = path.with_name(path.name + ".tmp")
    with aside.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, restval="")
        writer.writeheader()
        writer.writerows(rows)
    aside.replace(path)
    return header


def read_rows(path: Path) -> list[dict[str, str]]:
    """Every recorded run, best accuracy first (a run of several draws: their mean)."""
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
    return sorted(rows, key=ranking_accuracy, reverse=True)


def ranking_accuracy(row: Mapping[str, str]) -> float:
    """What ranks a run: the mean over its draws where it recorded one (--repeats; files
    from before have none), else its accuracy; missing or unreadable values sort last."""
    mean = _number(row.get("accuracy_mean"))
    if mean is not None:
        return mean
    accuracy = _number(row.get("accuracy"))
    return float("-inf") if accuracy is None else accuracy


def accuracy_text(row: Mapping[str, str]) -> str:
    """A run's accuracy as --history and outputs/index.html show it: "0.9556 ± 0.0314"
    over the draws of a repeated run, else "0.9474" (an unreadable value as it is)."""
    mean, std = _number(row.get("accuracy_mean")), _number(row.get("accuracy_std"))
    if mean is not None:
        return f"{mean:.4f}" + ("" if std is None else f" ± {std:.4f}")
    accuracy = _number(row.get("accuracy"))
    return (row.get("accuracy") or "") if accuracy is None else f"{accuracy:.4f}"


def _number(value: str | None) -> float | None:
    """A recorded number; None where empty, unreadable or NaN."""
    try:
        number = float(value or "")
    except ValueError:
        return None
    return None if math.isnan(number) else number


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
    if column == "dataset":  # with how its rows were split, where not at random
        protocol = row.get("protocol") or ""
        return dataset_name(row) + (f" ({protocol})" if protocol else "")
    if column == "extractor":
        return extractor_name(row)
    if column == "accuracy":
        return accuracy_text(row)
    value = row.get(column) or ""
    if column == "params":
        return params_text(value)
    if column == "time":
        return value.replace("T", " ")[:16]
    return value


def params_text(value: str) -> str:
    """A run's recorded parameters (results.csv's JSON) as report.txt writes them:
    "C=1000, max_depth=None", or "defaults" for a run without a search."""
    try:
        params = json.loads(value)
    except ValueError:
        return value
    if not isinstance(params, dict):
        return value
    if not params:
        return "defaults"
    return ", ".join(f"{key}={params[key]:g}" if isinstance(params[key], float)
                     else f"{key}={params[key]}" for key in sorted(params))


def _widths(header: Sequence[str], cells: Sequence[Sequence[str]]) -> list[int]:
    """Each column's width: its widest value, but WRAPPED_COLUMNS share the room the others
    leave, as wide as lets every value fit in the fewest lines; room to spare then widens
    whole columns back to one line, the narrowest first."""
    widths = [max(len(value) for value in column) for column in zip(header, *cells)]
    wrapped = [i for i, name in enumerate(header) if name in WRAPPED_COLUMNS]
    room = (HISTORY_WIDTH - 2 * (len(header) - 1)
            - sum(width for i, width in enumerate(widths) if i not in wrapped))
    values = {i: {header[i], *(run[i] for run in cells)} for i in wrapped}
    most = max(len(value.split()) for i in wrapped for value in values[i])
    for lines in range(1, most + 1):
        need = {i: max(_wrap_width(value, lines) for value in values[i]) for i in wrapped}
        if sum(need.values()) <= room:
            break
    else:  # words too long for any wrapping: each column's words broken at a fair share
        need = _shared(room, need, fair=True)
    wider = _shared(room - sum(need.values()), {i: widths[i] - need[i] for i in wrapped},
                    fair=False)
    return [need[i] + wider[i] if i in need else width for i, width in enumerate(widths)]


def _wrap_width(value: str, lines: int) -> int:
    """The narrowest width at which `value` wraps into at most `lines` lines."""
    low = max((len(word) for word in value.split()), default=0)
    high = max(low, len(value))
    while low < high:
        middle = (low + high) // 2
        if len(textwrap.wrap(value, middle, break_on_hyphens=False)) <= lines:
            high = middle
        else:
            low = middle + 1
    return low


def _shared(room: int, needs: dict[int, int], fair: bool) -> dict[int, int]:
    """`room` given out, the smallest need served first: each in full while room lasts,
    or, when `fair`, no more than an equal share of what is left."""
    given, left = {}, max(0, room)
    for n, i in enumerate(sorted(needs, key=needs.__getitem__)):
        given[i] = min(needs[i], left // (len(needs) - n) if fair else left)
        left -= given[i]
    return given


def format_table(rows: Sequence[Mapping[str, str]]) -> str:
    """One run per line (numbered), a value too long for its column wrapped onto the
    lines below, so that nothing is cut and the table fits in HISTORY_WIDTH characters;
    then the path of the run's report, indented, on a line of its own."""
    header = ["", *HISTORY_COLUMNS]
    cells = [[str(index), *(_cell(c, row) for c in HISTORY_COLUMNS)]
             for index, row in enumerate(rows, start=1)]
    widths = _widths(header, cells)
    runs = [[textwrap.wrap(value, max(1, width), break_on_hyphens=False) or [""]
             for value, width in zip(run, widths)] for run in cells]
    lines = [[part[k] if k < len(part) else "" for part in run]
             for run in runs for k in range(max(map(len, run)))]
    head, rule, *body = table(lines, header, rule=True, right={0})
    out = [head, rule]
    number = len(str(len(rows)))
    for row, run in zip(rows, runs):
        height = max(map(len, run))
        out += body[:height]
        body = body[height:]
        report = row.get("report") or ""
        if report:
            page = Path(report) / "index.html"
            out.append(" " * number + f"  {page if page.is_file() else report}")
    return "\n".join(out)


def ledger_row(metrics: Metrics) -> LedgerRow:
    """The results.csv row of a run, taken from its metrics so the two always agree."""
    def joined(key: str) -> str:  # a fused run names every file's setting, in order
        return " + ".join(str(source.extractor[key]) for source in metrics.features)

    accuracy = [draw.accuracy for draw in metrics.draws]
    return LedgerRow(
        time=metrics.created,
        features=" + ".join(source.path for source in metrics.features),
        backbone=joined("backbone"), pooling=joined("pooling"), weights=joined("weights"),
        model=metrics.model + ("+scale" if metrics.scale else ""),
        params=metrics.best_params, accuracy=metrics.accuracy, macro_f1=metrics.macro_f1,
        seconds=sum(metrics.timings.values()), report=metrics.report_dir,
        protocol=protocol_note(metrics),
        accuracy_mean=float(np.mean(accuracy)) if accuracy else None,
        accuracy_std=float(np.std(accuracy)) if accuracy else None,
    )


def protocol_note(metrics: Metrics) -> str:
    """results.csv's protocol: how the rows were split, where not at random, and the
    per-class protocol's or the draws' balanced accuracy ("" for one random split)."""
    ran = metrics.protocol
    parts = []
    if ran is not None and ran.kind == "given":
        parts.append(f"given split: {ran.split_source}")
    elif ran is not None and ran.kind == "per_class":
        test = f"up to {ran.test_per_class}" if ran.test_per_class else "the rest"
        parts.append(f"{ran.train_per_class} per class, test {test}"
                     + (f", given split: {ran.split_source}" if ran.split_source else ""))
    if metrics.draws:
        parts.append(f"{len(metrics.draws)} draws: balanced accuracy "
                     f"{metrics.balanced_accuracy_mean:.4f} ± {metrics.balanced_accuracy_std:.4f}")
    elif ran is not None and ran.kind == "per_class":
        parts.append(f"balanced accuracy {metrics.balanced_accuracy:.4f}")
    return "; ".join(parts)
