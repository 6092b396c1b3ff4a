"""The findings of an inspection as typed records, and their files: findings.json (every
finding and the run's settings and notes) and findings.csv (one row per finding)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field
from typing import Any

KINDS = ("leakage", "exact_copy", "near_duplicate", "label_error", "outlier")
CSV_COLUMNS = ("kind", "score", "paths", "classes", "splits", "similarity", "given_label",
               "suggested_label", "probability", "given_probability", "distance")


@dataclass
class Finding:
    """One thing wrong with the data. `score` ranks findings of a kind, highest first:
    the lowest similarity within a group of copies (leakage, exact_copy,
    near_duplicate), one minus the given label's probability (label_error), or the
    distance relative to the class's median (outlier)."""

    kind: str
    score: float
    rows: list[int]
    paths: list[str]
    classes: list[str]  # the given class of each image
    splits: list[str] | None = None  # leakage: train, val or test, per image
    similarity: float | None = None  # copies: the lowest similarity linking the group
    given_label: str | None = None  # label_error
    suggested_label: str | None = None
    probability: float | None = None  # of the suggested label, out of fold
    given_probability: float | None = None
    distance: float | None = None  # outlier: to the k-th nearest image of its class

    def to_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}


@dataclass
class Inspection:
    """Everything one inspection found, with what it looked at."""

    features: str
    created: str
    n_images: int
    label_names: list[str]
    settings: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    # What makes the findings themselves doubtful (features that separate classes poorly)
    warnings: list[str] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[Finding]:
        return [finding for finding in self.findings if finding.kind == kind]

    def counts(self) -> dict[str, int]:
        return {kind: len(self.of_kind(kind)) for kind in KINDS}

    def to_dict(self) -> dict[str, Any]:
        return {"features": self.features, "created": self.created,
                "n_images": self.n_images, "label_names": self.label_names,
                "settings": self.settings, "warnings": self.warnings, "notes": self.notes,
                "counts": self.counts(),
                "findings": [finding.to_dict() for finding in self.findings]}


def findings_json(inspection: Inspection) -> str:
    return json.dumps(inspection.to_dict(), indent=2) + "\n"


def findings_csv(inspection: Inspection) -> str:
    """One row per finding; a group's paths, classes and splits joined with " | "."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for finding in inspection.findings:
        row = finding.to_dict()
        writer.writerow({column: (" | ".join(map(str, row[column]))
                                  if isinstance(row.get(column), list)
                                  else _cell(row.get(column)))
                         for column in CSV_COLUMNS})
    return out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
