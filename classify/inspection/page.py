"""The inspection's page, outputs/inspect/<stem>/index.html, and the sections that
classify's run report borrows (the leaking groups, a smaller map).

Self-contained like the run report (classify.report.html writes the page and the
thumbnails): inline CSS, thumbnails as data: URLs, the map as inline SVG. The one
script shows a point's thumbnail when the pointer rests on it; without it, each point
still names its image in a tooltip.
"""

from __future__ import annotations

import colorsys
import html
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from classify.inspection.findings import Finding, Inspection
from classify.report.html import PAGE, setting_label, thumbnail, write_page

SHOWN_PER_SECTION = 100  # findings with thumbnails; findings.csv has them all
MAP_THUMBNAILS = 800  # map points with a thumbnail to show (findings first)
MAP_THUMBNAIL_PX = 96
MAP_FILE = "map.json"
# Categorical colours (Tableau 20); more classes take evenly spread hues.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896",
           "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5")
MARKS = {"leakage": "#000000", "exact_copy": "#000000", "near_duplicate": "#000000",
         "label_error": "#d62728", "outlier": "#ff7f0e"}
MARK_ORDER = ("label_error", "outlier", "leakage", "exact_copy", "near_duplicate")  # ring kept
MARK_NAMES = {"#000000": "copies", "#d62728": "likely label error", "#ff7f0e": "outlier"}
STYLE = """
.groups { display: flex; flex-wrap: wrap; gap: 10px; }
.group { border: 1px solid #e2e2e2; padding: 8px; }
.group .muted { overflow-wrap: anywhere; }
.map { position: relative; display: inline-block; }
.map svg { border: 1px solid #ddd; background: #fff; }
.hover { position: absolute; top: 8px; right: 8px; pointer-events: none; }
.legend span { display: inline-block; margin: 0 10px 4px 0; font-size: 12px; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 5px;
          margin-right: 4px; vertical-align: middle; }
.test { color: #b2182b; font-weight: 600; } .train, .val { color: #2166ac; }
"""
HOVER_SCRIPT = """<script>
document.querySelectorAll(".map").forEach(function (map) {
  var hover = map.querySelector(".hover");
  map.querySelectorAll("circle[data-t]").forEach(function (point) {
    point.addEventListener("mouseenter", function () {
      var held = document.getElementById("t" + point.dataset.t);
      hover.innerHTML = held ? held.innerHTML : "";
    });
    point.addEventListener("mouseleave", function () { hover.innerHTML = ""; });
  });
});
</script>"""


def _e(text: Any) -> str:
    return html.escape(str(text))


def colour(label: int) -> str:
    if label < len(PALETTE):
        return PALETTE[label]
    red, green, blue = colorsys.hls_to_rgb((label * 0.618034) % 1.0, 0.5, 0.65)
    return f"#{int(red * 255):02x}{int(green * 255):02x}{int(blue * 255):02x}"


@dataclass
class MapData:
    """The 2-D map as map.json keeps it: which rows, where, their classes and marks."""

    fingerprint: str | None  # the feature file's dataset_fingerprint
    n_images: int
    label_names: list[str]
    rows: list[int]
    x: list[float]
    y: list[float]
    labels: list[int]
    marks: dict[int, str]  # row -> the kind of finding it is marked for

    def to_json(self) -> str:
        return json.dumps({**self.__dict__, "marks": {str(k): v for k, v in self.marks.items()}})

    @classmethod
    def read(cls, path: Path) -> MapData | None:
        """The map a former inspection saved, or None where there is none or it is unreadable."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            data["marks"] = {int(k): v for k, v in data["marks"].items()}
            return cls(**data)
        except (OSError, ValueError, KeyError, TypeError):
            return None


def map_svg(data: MapData, width: int, height: int, paths: Sequence[str] | None = None,
            thumbnails: Mapping[int, int] | None = None) -> str:
    """The map as inline SVG: points coloured by class, findings ringed; a point with an
    entry in `thumbnails` (row -> template number) shows it on hover."""
    pad, radius = 8, 2.5 if len(data.rows) > 2000 else 3.5
    plain: list[str] = []
    marked: list[tuple[int, str]] = []
    for row, x, y, label in zip(data.rows, data.x, data.y, data.labels):
        cx, cy = pad + x * (width - 2 * pad), pad + (1 - y) * (height - 2 * pad)
        kind = data.marks.get(row)
        name = paths[row] if paths is not None else f"row {row}"
        tip = f"{name} ({data.label_names[label]}{', ' + kind.replace('_', ' ') if kind else ''})"
        hook = (f' data-t="{thumbnails[row]}"'
                if thumbnails is not None and row in thumbnails else "")
        ring = (f' r="{radius + 1.5}" stroke="{MARKS[kind]}" stroke-width="1.5"' if kind
                else f' r="{radius}"')
        point = (f'<circle cx="{cx:.1f}" cy="{cy:.1f}"{ring} fill="{colour(label)}"{hook}>'
                 f"<title>{_e(tip)}</title></circle>")
        if kind:
            marked.append((MARK_ORDER.index(kind), point))
        else:
            plain.append(point)
    on_top = [point for _, point in sorted(marked, key=lambda item: -item[0])]  # errors last
    return (f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'role="img" aria-label="map of the images">{"".join(plain + on_top)}</svg>')


def legend(data: MapData) -> str:
    present = sorted(set(data.labels))
    classes = "".join(f'<span><i class="swatch" style="background:{colour(label)}"></i>'
                      f"{_e(data.label_names[label])}</span>" for label in present)
    kinds = sorted({MARKS[kind] for kind in data.marks.values()})
    rings = "".join(f'<span><i class="swatch" style="border:2px solid {stroke}"></i>'
                    f"ringed: {MARK_NAMES[stroke]}</span>" for stroke in kinds)
    return f'<p class="legend">{classes}{rings}</p>'


def _caption(finding: Finding, index: int) -> str:
    parts = [f'<div class="muted">{_e(finding.paths[index])}</div>',
             f"<div>{_e(finding.classes[index])}</div>"]
    if finding.splits is not None:
        side = finding.splits[index]
        parts.append(f'<div class="{_e(side)}">{_e(side)}</div>')
    return "".join(parts)


def group_figure(finding: Finding, root: Path | None) -> str:
    """The images of one group of copies side by side, with their class (and side)."""
    figures = "".join(
        f"<figure>{thumbnail(root, path)}<figcaption>{_caption(finding, i)}</figcaption></figure>"
        for i, path in enumerate(finding.paths))
    return (f'<div class="group"><div>similarity {finding.score:.4f}, '
            f'{len(finding.paths)} images</div><div class="gallery">{figures}</div></div>')


def _single_figure(finding: Finding, root: Path | None) -> str:
    if finding.kind == "label_error":
        lines = (f'<div class="wrong">given: {_e(finding.given_label)} '
                 f"(p {finding.given_probability:.3f})</div>"
                 f'<div class="true">suggested: {_e(finding.suggested_label)} '
                 f"(p {finding.probability:.3f})</div>")
    else:
        lines = (f"<div>{_e(finding.classes[0])}</div>"
                 f"<div>{finding.score:.2f} x the class's usual distance</div>")
    return (f"<figure>{thumbnail(root, finding.paths[0])}<figcaption>{lines}"
            f'<div class="muted">{_e(finding.paths[0])}</div></figcaption></figure>')


def _section(anchor: str, title: str, found: Sequence[Finding], explain: str,
             render: str, root: Path | None) -> list[str]:
    head = [f'<h2 id="{anchor}">{_e(title)} ({len(found)})</h2>', f'<p class="muted">{explain}</p>']
    if not found:
        return [*head, "<p>None found.</p>"]
    shown = found[:SHOWN_PER_SECTION]
    more = (f'<p class="muted">The first {len(shown)} of {len(found)} are shown; '
            "findings.csv lists them all.</p>" if len(found) > len(shown) else "")
    if render == "groups":
        groups = "".join(group_figure(finding, root) for finding in shown)
        return [*head, more, f'<div class="groups">{groups}</div>']
    figures = "".join(_single_figure(finding, root) for finding in shown)
    return [*head, more, f'<div class="gallery">{figures}</div>']


def write_inspection_page(folder: Path, inspection: Inspection, data: MapData,
                          paths: Sequence[str], root: Path | None, index_page: Path) -> Path:
    """folder/index.html: the summary, every kind of finding with thumbnails, the map."""
    counts = inspection.counts()
    stem = Path(inspection.features).stem
    summary = "".join(f"<tr><td>{_e(kind.replace('_', ' '))}</td>"
                      f'<td class="num"><a href="#{kind}">{count}</a></td></tr>'
                      for kind, count in counts.items())
    settings = "".join(f"<tr><td>{_e(setting_label(k))}</td><td>{_e(v)}</td></tr>"
                       for k, v in inspection.settings.items())
    notes = "".join(f"<li>{_e(note)}</li>" for note in inspection.notes)
    thumbnails, templates = _map_thumbnails(inspection, data, paths, root)
    copies = inspection.of_kind("exact_copy") + inspection.of_kind("near_duplicate")
    body = [
        f'<style>{STYLE}</style>',
        f'<p><a href="{_e(os.path.relpath(index_page, folder))}">all runs</a></p>',
        f"<h1>Inspection of {_e(stem)}</h1>",
        (f"<p>{inspection.n_images} images, {len(inspection.label_names)} classes; "
        f"features {_e(inspection.features)}; {_e(inspection.created)}</p>"),
        *(f'<p class="wrong"><b>{_e(warning)}</b></p>' for warning in inspection.warnings),
        f'<div class="sections"><table>{summary}</table><table>{settings}</table></div>',
        f"<ul>{notes}</ul>" if notes else "",
        *_section("leakage", "Leakage: copies on both sides of the split",
                  inspection.of_kind("leakage"),
                  "Groups of near-duplicates with an image in the test part and another in "
                  f"the training part of {_e(inspection.settings.get('split', 'the split'))}: "
                  "the test score counts these images as unseen.", "groups", root),
        '<span id="exact_copy"></span>',
        *_section("near_duplicate", "Exact copies and near-duplicates", copies,
                  "Groups of images that are the same photograph: files with equal content "
                  "(exact copies), or features far closer than their neighbourhoods "
                  "(resized, re-encoded or cropped copies).", "groups", root),
        *_section("label_error", "Likely label errors", inspection.of_kind("label_error"),
                  "Images whose given label a cross-validated logistic regression, trained "
                  "without them, finds unlikely (cleanlab's find_label_issues), least "
                  "likely first.", "single", root),
        *_section("outlier", "Outliers", inspection.of_kind("outlier"),
                  "Images far from every other image of their class: the distance to their "
                  "k-th nearest neighbour in the class, against the class's usual distance.",
                  "single", root),
        '<h2 id="map">Map</h2>',
        (f'<p class="muted">t-SNE map of {len(data.rows)} of the {data.n_images} images, coloured '
        "by class; findings are ringed. Rest on a point to see its image.</p>"),
        legend(data),
        (f'<div class="map">{map_svg(data, 1000, 700, paths, thumbnails)}'
        '<div class="hover"></div></div>'),
        "".join(templates),
        HOVER_SCRIPT,
    ]
    return write_page(folder / PAGE, f"inspect: {stem}", body)


def _map_thumbnails(inspection: Inspection, data: MapData, paths: Sequence[str],
                    root: Path | None) -> tuple[dict[int, int], list[str]]:
    """Thumbnails for the first MAP_THUMBNAILS map points, those with findings first."""
    if root is None:
        return {}, []
    shown = [row for row in data.rows if row in data.marks]
    shown += [row for row in data.rows if row not in data.marks]
    thumbnails, templates = {}, []
    for number, row in enumerate(shown[:MAP_THUMBNAILS]):
        thumbnails[row] = number
        templates.append(f'<template id="t{number}">'
                         f"{thumbnail(root, paths[row], MAP_THUMBNAIL_PX)}</template>")
    return thumbnails, templates


def run_report_sections(groups: Sequence[Sequence[int]], sides: Mapping[int, str],
                        similarity: Sequence[float], paths: Sequence[str],
                        class_of: Mapping[int, str], root: Path | None,
                        inspect_folder: Path | None, report_folder: Path,
                        fingerprint: str | None) -> list[str]:
    """classify's report: the groups that leak across its split, and the map that an
    earlier `inspect` of the same features drew (or how to get one)."""
    leaking = [Finding("leakage", score, list(group), [paths[r] for r in group],
                       [class_of[r] for r in group], [sides[r] for r in group])
               for group, score in zip(groups, similarity)]
    out = ['<h2 id="leakage">Leakage: near-duplicates across the split</h2>']
    if leaking:
        out.append(f"<p>{len(leaking)} group(s) of near-duplicate images have an image in "
                   "the test part and another in the training part: the test score counts "
                   "them as unseen, so it may be inflated.</p>")
        groups = "".join(group_figure(finding, root) for finding in leaking[:SHOWN_PER_SECTION])
        out.append(f'<style>{STYLE}</style><div class="groups">{groups}</div>')
    else:
        out.append("<p>None: no test image has a near-duplicate among the training images.</p>")
    saved = MapData.read(inspect_folder / MAP_FILE) if inspect_folder is not None else None
    out.append('<h2 id="map">Map of the data</h2>')
    if saved is None or saved.fingerprint != fingerprint or saved.n_images != len(paths):
        out.append('<p class="muted">Run <code>inspect</code> on these features to see a map '
                   "of all images here (and duplicates, likely label errors and outliers).</p>")
        return out
    page = os.path.relpath(inspect_folder / PAGE, report_folder)
    out += [(f'<p class="muted">t-SNE map of the images, coloured by class, from '
            f'<a href="{_e(page)}">the inspection</a>; findings are ringed.</p>'),
            legend(saved), f'<div class="map">{map_svg(saved, 480, 340, paths)}</div>']
    return out


def map_data(features_fingerprint: str | None, n_images: int, label_names: list[str],
             rows: np.ndarray, coordinates: np.ndarray, y: np.ndarray,
             findings: Sequence[Finding]) -> MapData:
    """The map of `rows`, marked with the first kind of finding that names each row."""
    marks: dict[int, str] = {}
    for finding in sorted(findings, key=lambda f: MARK_ORDER.index(f.kind)):
        for row in finding.rows:
            marks.setdefault(row, finding.kind)
    shown = {int(r) for r in rows}
    return MapData(features_fingerprint, n_images, list(label_names), [int(r) for r in rows],
                   [round(float(v), 5) for v in coordinates[:, 0]],
                   [round(float(v), 5) for v in coordinates[:, 1]],
                   [int(y[r]) for r in rows], {r: k for r, k in marks.items() if r in shown})
