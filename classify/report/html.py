"""The pages people open after a run: outputs/reports/<run>/index.html and outputs/index.html.

Both are single self-contained files (inline CSS, thumbnails embedded as data: URLs), so
they open from the file system with no server and survive being mailed or copied. The
run page takes plain values (settings, encoded labels, confidences, test image paths),
so whichever code runs the experiment can write it. TensorFlow is never imported.
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from classify.report.evaluation import AVERAGES, evaluate
from classify.report.ledger import accuracy_text, params_text, read_rows

PAGE = "index.html"
THUMBNAIL_PX = 160
MATRIX_COUNTS_UP_TO = 30  # classes; beyond that the matrix shows colour only
# The pages' words for the settings' keys (a run's, an inspection's); any other key shows
# with its underscores as spaces ("input_size": "input size").
LABELS = {"n_train": "training images", "n_test": "test images",
          "n_val": "val images (in training)", "cv": "cv folds", "best_params": "chosen",
          "tie_break": "tie-break", "near_duplicates": "near-duplicates"}
# Sections whose rows are the model's parameters, named as --grid names them.
PARAMETER_SECTIONS = ("grid", "best_params")
STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1200px;
       padding: 0 16px; color: #1d1d1f; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { padding: 3px 8px; border: 1px solid #e2e2e2; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.headline { font-size: 28px; font-weight: 600; }
.bar { display: inline-block; height: 10px; background: #2166ac; vertical-align: middle; }
.bar.recall { background: #b2182b; }
table.matrix td { width: 22px; height: 22px; padding: 0; text-align: center; font-size: 11px; }
table.matrix th.col { writing-mode: vertical-rl; transform: rotate(180deg);
                      font-weight: normal; padding: 4px 2px; }
table.matrix th.row { font-weight: normal; white-space: nowrap; }
table.matrix.dense td { width: 9px; height: 9px; }
table.matrix.dense th { font-size: 9px; padding: 0 2px; }
.scroll { overflow: auto; max-height: 1400px; }
.gallery { display: flex; flex-wrap: wrap; gap: 12px; }
.gallery figure { margin: 0; width: 170px; font-size: 12px; }
.gallery img, .placeholder { width: 160px; height: 160px; object-fit: contain;
                             background: #f3f3f3; display: block; }
.placeholder { display: flex; align-items: center; justify-content: center;
               text-align: center; color: #888; word-break: break-all; }
.true { color: #1a7f37; } .wrong { color: #b2182b; }
.muted { color: #777; }
.sections { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.sections td:last-child { max-width: 420px; word-break: break-all; }
table.records { font-size: 13px; } table.records td:first-child { overflow-wrap: anywhere; }
"""


def write_run_report(
    folder: Path,
    *,
    title: str,
    settings: Mapping[str, Any],
    label_names: Sequence[str],
    y_true: Sequence[int],
    y_pred: Sequence[int],
    confidence: Sequence[float] | None,
    test_paths: Sequence[str],
    image_root: Path | None,
    index_page: Path | None = None,
    extra_sections: Sequence[str] = (),
) -> Path:
    """folder/index.html: settings, accuracy, per-class table, confusion matrix, and every
    misclassified test image, most confident mistake first.

    `y_true`/`y_pred` index `label_names`; `test_paths` are relative to `image_root`;
    `index_page`, when given, is linked as the page of all runs; `extra_sections`
    (HTML, such as classify.inspection's leakage and map) follow the mistakes.
    """
    # The search package loads scikit-learn, which `classify --history` (write_index) skips.
    from classify.search.results import grid_edges

    if edge := grid_edges(settings.get("grid") or {}, settings.get("best_params") or {}):
        settings = {**settings, "grid_edge": edge}
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    evaluation = evaluate(y_true, y_pred, label_names)
    body = [
        f'<p><a href="{_e(os.path.relpath(index_page, folder))}">all runs</a></p>'
        if index_page else "",
        f"<h1>{_e(title)}</h1>",
        f'<p class="headline">accuracy {evaluation.accuracy:.4f}</p>',
        (f"<p>{len(y_true)} test images, {int((y_true != y_pred).sum())} misclassified; "
        f"macro F1 {evaluation.macro_f1:.4f}</p>"),
        '<h2 id="settings">Settings and protocol</h2>',
        _settings_table(settings),
        '<h2 id="classes">Per-class precision and recall</h2>',
        _class_table(evaluation.table),
        '<h2 id="confusion">Confusion matrix</h2>',
        ('<p class="muted">Rows: true class; columns: predicted class; shade: fraction of '
        "the true class.</p>"),
        _matrix([label_names[i] for i in evaluation.labels], evaluation.confusion),
        '<h2 id="misclassified">Misclassified test images</h2>',
        _gallery(label_names, y_true, y_pred, confidence, test_paths, image_root),
        *extra_sections,
    ]
    return write_page(folder / PAGE, title, body)


def write_index(outputs: Path, results_file: str = "results.csv") -> Path:
    """outputs/index.html: every run in outputs/results.csv, best accuracy by features
    and model, and a link to each run's page."""
    rows = read_rows(outputs / results_file)
    body = [f"<h1>offtheshelf runs in {_e(str(outputs.resolve()))}</h1>"]
    inspections = sorted(outputs.glob(f"inspect/*/{PAGE}"))  # written by `inspect`
    if inspections:
        body.append("<p>Data inspections (duplicates, leakage, label errors, outliers, map): "
                    + ", ".join(f'<a href="{_e(os.path.relpath(page, outputs))}">'
                                f"{_e(page.parent.name)}</a>" for page in inspections) + "</p>")
    if not rows:
        body.append("<p>No runs recorded yet: run <code>classify</code>.</p>")
        return write_page(outputs / PAGE, "offtheshelf runs", body)
    models = sorted({row["model"] for row in rows})
    best: dict[tuple[str, str], dict[str, str]] = {}
    for row in rows:  # best accuracy first, so the first row of a cell is its best
        best.setdefault((_features_name(row), row["model"]), row)
    features = sorted({name for name, _ in best})
    backbone = {_features_name(row): row.get("backbone", "") for row in rows}
    pivot = ["<table><tr><th>features</th><th>backbone</th>"
             + "".join(f"<th>{_e(m)}</th>" for m in models) + "</tr>"]
    for name in features:
        cells = "".join(
            f'<td class="num">{_run_link(outputs, best[name, m], _accuracy(best[name, m]))}</td>'
            if (name, m) in best else "<td></td>"
            for m in models
        )
        pivot.append(f"<tr><td>{_e(name)}</td><td>{_e(backbone[name])}</td>{cells}</tr>")
    pivot.append("</table>")
    columns = ("accuracy", "macro_f1", "model", "params", "backbone", "pooling", "weights",
               "features", "time")
    runs = ["<table><tr>" + "".join(f"<th>{c}</th>" for c in columns) + "<th>report</th></tr>"]
    for row in rows:
        cells = "".join(
            f'<td class="num">{_accuracy(row, c)}</td>' if c in ("accuracy", "macro_f1")
            else f"<td>{_e(_index_cell(row, c))}</td>"
            for c in columns
        )
        runs.append(f"<tr>{cells}<td>{_run_link(outputs, row, 'open')}</td></tr>")
    runs.append("</table>")
    body += [
        "<h2>Best test accuracy by features and model</h2>", *pivot,
        f"<h2>All runs ({len(rows)}), best first</h2>", *runs,
    ]
    return write_page(outputs / PAGE, "offtheshelf runs", body)


def _e(text: Any) -> str:
    return html.escape(str(text))


def write_page(path: Path, title: str, body: list[str]) -> Path:
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{STYLE}</style></head>\n<body>\n"
        + "\n".join(body) + "\n</body></html>\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(page, encoding="utf-8")
    partial.replace(path)
    return path


def _settings_table(settings: Mapping[str, Any]) -> str:
    """One small table per section (the nested mappings), side by side; the rest first;
    a list of mappings (the extractors) as a table of its own, one row each."""
    sections: dict[str, Mapping[str, Any]] = {"run": {}}
    records: dict[str, Sequence[Mapping[str, Any]]] = {}
    for key, value in settings.items():
        if isinstance(value, Mapping) and value:
            sections[key] = value
        elif (isinstance(value, list | tuple) and value
              and all(isinstance(item, Mapping) for item in value)):
            records[key] = value
        else:
            sections["run"] = {**sections["run"], key: value}
    tables = [
        f'<table><tr><th colspan="2">{_e(setting_label(name))}</th></tr>'
        + "".join(f"<tr><td>{_e(k if name in PARAMETER_SECTIONS else setting_label(k))}</td>"
                  f"<td>{_e(_shown(v))}</td></tr>" for k, v in rows.items())
        + "</table>"
        for name, rows in sections.items()
    ]
    return (f'<div class="sections">{"".join(tables)}</div>'
            + "".join(_records_table(name, rows) for name, rows in records.items()))


def _records_table(name: str, records: Sequence[Mapping[str, Any]]) -> str:
    """One row per record, one column per key that any record sets (a setting that does
    not apply, None such as random_init for ImageNet weights, shows as "-")."""
    columns = [key for key in dict.fromkeys(k for record in records for k in record)
               if any(record.get(key) is not None for record in records)]
    head = "".join(f"<th>{_e(setting_label(column))}</th>" for column in columns)
    rows = "".join(
        "<tr>" + "".join(_record_cell(c, record.get(c)) for c in columns) + "</tr>"
        for record in records
    )
    return (f'<div class="scroll"><table class="{_e(name)} records"><tr>{head}</tr>{rows}'
            "</table></div>")


def setting_label(key: str) -> str:
    """A setting's key as the pages show it: words, not the code's snake_case."""
    return LABELS.get(key, key.replace("_", " "))


def _record_cell(column: str, value: Any) -> str:
    """A record's value; a backbone's preprocessing by its short name, the whole as a
    tooltip."""
    if value is None:
        return "<td>-</td>"
    if column == "preprocessing" and (short := preprocessing_name(str(value))) != value:
        return f'<td title="{_e(value)}">{_e(short)}</td>'
    return f"<td>{_e(_shown(value))}</td>"


def preprocessing_name(value: str) -> str:
    """A backbone's own preprocess_input by its module's name
    ("keras.applications.vgg16.preprocess_input": "vgg16"); a named scaling as it is."""
    module, _, function = value.rpartition(".")
    return module.rpartition(".")[2] if module and function == "preprocess_input" else value


def _shown(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_shown(v)}" for k, v in value.items()) or "(none)"
    if isinstance(value, list | tuple):
        return ", ".join(_shown(v) for v in value) or "(none)"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)  # None too: a searched parameter's value (max_depth None)


def _class_table(table: Mapping[str, Any]) -> str:
    rows = [('<table class="classes"><tr><th>class</th><th>precision</th><th></th>'
            "<th>recall</th><th></th><th>F1</th><th>support</th></tr>")]
    for name, values in table.items():
        if name == "accuracy":
            continue
        precision, recall = values["precision"], values["recall"]
        style = ' style="font-weight:600"' if name in AVERAGES else ""
        rows.append(
            f"<tr{style}><td>{_e(name)}</td>"
            f'<td class="num">{precision:.4f}</td><td>{_bar(precision, "")}</td>'
            f'<td class="num">{recall:.4f}</td><td>{_bar(recall, "recall")}</td>'
            f'<td class="num">{values["f1-score"]:.4f}</td>'
            f'<td class="num">{int(values["support"])}</td></tr>'
        )
    return "".join(rows) + "</table>"


def _bar(fraction: float, kind: str) -> str:
    return f'<span class="bar {kind}" style="width:{100 * fraction:.0f}px"></span>'


def _matrix(names: Sequence[str], counts: np.ndarray) -> str:
    totals = counts.sum(axis=1, keepdims=True)
    fractions = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    with_counts = len(names) <= MATRIX_COUNTS_UP_TO
    dense = "" if with_counts else " dense"
    rows = [f'<div class="scroll"><table class="matrix{dense}"><tr><th></th>'
            + "".join(f'<th class="col">{_e(n)}</th>' for n in names) + "</tr>"]
    for i, name in enumerate(names):
        cells = []
        for j, count in enumerate(counts[i]):
            if not count:  # most cells of a large matrix: kept small
                cells.append("<td></td>")
                continue
            shade = fractions[i, j]
            colour = "#fff" if shade > 0.5 else "#000"
            text = str(count) if with_counts else ""
            cells.append(
                f'<td title="true {_e(name)}, predicted {_e(names[j])}: {count}" '
                f'style="background:rgba(33,102,172,{shade:.3f});color:{colour}">{text}</td>'
            )
        rows.append(f'<tr><th class="row">{_e(name)}</th>{"".join(cells)}</tr>')
    return "".join(rows) + "</table></div>"


def _gallery(
    label_names: Sequence[str], y_true: np.ndarray, y_pred: np.ndarray,
    confidence: Sequence[float] | None, test_paths: Sequence[str], image_root: Path | None,
) -> str:
    wrong = np.flatnonzero(y_true != y_pred)
    if not len(wrong):
        return "<p>None: every test image was classified correctly.</p>"
    scores = None if confidence is None else np.asarray(confidence, dtype=float)
    if scores is not None:
        wrong = wrong[np.argsort(-scores[wrong], kind="stable")]
    note = ("most confident mistakes first" if scores is not None
            else "the model gives no probabilities, so no confidence is shown")
    figures = []
    for i in wrong:
        path = test_paths[i]
        shown = "n/a" if scores is None else f"{scores[i]:.4f}"
        figures.append(
            f"<figure>{thumbnail(image_root, path)}<figcaption>"
            f'<div class="true">true: {_e(label_names[y_true[i]])}</div>'
            f'<div class="wrong">predicted: {_e(label_names[y_pred[i]])}</div>'
            f"<div>confidence {shown}</div>"
            f'<div class="muted">{_e(path)}</div></figcaption></figure>'
        )
    return (f'<p class="muted">{len(wrong)} image(s), {note}.</p>'
            f'<div class="gallery">{"".join(figures)}</div>')


def thumbnail(root: Path | None, relative: str, size: int = THUMBNAIL_PX) -> str:
    """The image as an embedded JPEG thumbnail, or a placeholder saying why not."""
    from PIL import Image, UnidentifiedImageError

    path = Path(relative) if root is None else root / relative
    try:
        with Image.open(path) as image:
            image.draft("RGB", (size, size))  # JPEG: decode at reduced scale
            image.thumbnail((size, size))
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, format="JPEG", quality=85)
    except FileNotFoundError:
        return '<div class="placeholder">image not found</div>'
    except (OSError, UnidentifiedImageError, ValueError):
        return '<div class="placeholder">image unreadable</div>'
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img src="data:image/jpeg;base64,{data}" alt="{_e(relative)}">'


def _features_name(row: Mapping[str, str]) -> str:
    """The run's feature files by name: "a + b" for a fused run, as results.csv joins them."""
    return " + ".join(Path(path.strip()).stem for path in (row.get("features") or "").split(" + "))


def _index_cell(row: Mapping[str, str], column: str) -> str:
    if column == "features":
        return _features_name(row)
    if column == "params":
        return params_text(row.get("params") or "")
    return row.get(column) or ""


def _accuracy(row: Mapping[str, str], column: str = "accuracy") -> str:
    """A run's score: its accuracy (over the draws of a repeated run), or macro F1."""
    if column == "accuracy":
        return _e(accuracy_text(row))
    try:
        return f"{float(row.get(column) or ''):.4f}"
    except ValueError:
        return _e(row.get(column) or "")


def _run_link(outputs: Path, row: Mapping[str, str], text: str) -> str:
    """A link to the run's page, relative to outputs/, when that page exists."""
    page = outputs / "reports" / Path(row.get("report") or "").name / PAGE
    if not row.get("report") or not page.is_file():
        return text
    return f'<a href="{_e(os.path.relpath(page, outputs))}">{text}</a>'
