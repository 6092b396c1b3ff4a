"""One inspection, without the command line: read the features, find what is wrong with
the data, and write outputs/inspect/<features-stem>/.

    from classify.inspection.run import InspectConfig, run
    result = run(InspectConfig(features=Path("outputs/features/x.h5")), announce=print)
    result.inspection.counts(), result.page

What is written replaces the folder of an earlier inspection of the same file only once
everything is in place, so a failed run leaves the earlier one whole.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from classify import protocol
from classify.inspection import embedding, labels, leakage, neighbours, outliers
from classify.inspection.findings import Finding, Inspection, findings_csv, findings_json
from classify.inspection.hashes import hash_images
from classify.inspection.page import MAP_FILE, map_data, write_inspection_page
from classify.report.html import write_index
from common.dask_cluster import connect  # imports distributed only when it connects
from common.errors import UserError
from extract.featurefile import Features, Float64Note, read_features


class InspectError(UserError, ValueError):
    """Features that cannot be inspected; the message names the file and the way out."""


@dataclass(frozen=True)
class InspectConfig:
    """What one inspection reads and how it splits (as classify would, for leakage)."""

    features: Path
    outputs: Path = Path("outputs")
    seed: int = 42
    test_size: float = 0.25
    cluster: str | None = None  # the neighbour search on Dask: local:N or an address


@dataclass
class InspectResult:
    inspection: Inspection
    folder: Path  # outputs/inspect/<stem>/
    page: Path
    timings: dict[str, float] = field(default_factory=dict)


def _silent(note: str) -> None:
    """Where notes go when run() is given no `announce`."""


@contextmanager
def _timed(timings: dict[str, float], phase: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    timings[phase] = time.perf_counter() - start


def _client(cluster: str | None) -> Any:
    """A Dask client for --cluster, or a context that gives None."""
    if cluster is None:
        return nullcontext(None)
    return connect(cluster)


def run(config: InspectConfig, announce: Callable[[str], None] | None = None) -> InspectResult:
    """Inspect one feature file; notes go to `announce`, the result comes back and is
    written under config.outputs/inspect/<stem>/."""
    announce = announce or _silent
    timings: dict[str, float] = {}
    with _timed(timings, "load"):
        features, notes = _read(config.features)
    root = Path(features.attrs["dataset_root"]) if features.attrs.get("dataset_root") else None
    with _timed(timings, "hashes"):
        hashes = hash_images(root, features.paths)
    notes += _image_notes(features, root, hashes.unreadable)
    with _timed(timings, "neighbours"), _client(config.cluster) as client:
        found = neighbours.nearest(neighbours.ArrayRows([features.X]), client=client)
    pairs = neighbours.near_duplicate_pairs(found)
    linked = neighbours.groups(len(features.y), [(p.first, p.second) for p in pairs] + [
        (group[0], row) for group in hashes.copies() for row in group[1:]])
    ranked = sorted(zip(leakage.lowest_similarity(linked, pairs), linked),
                    key=lambda item: -item[0])
    results, split = _leakage(features, ranked, config, notes)
    for score, group in ranked:
        digests = {hashes.digests[row] for row in group}
        kind = "exact_copy" if len(digests) == 1 and None not in digests else "near_duplicate"
        results.append(_finding(features, kind, score, group, similarity=score))
    warned: list[str] = []
    with _timed(timings, "labels"):
        results += _label_errors(features, config.seed, notes, warned)
    with _timed(timings, "outliers"):
        results += [_finding(features, "outlier", o.score, [o.row], distance=o.distance)
                    for o in outliers.outliers(features.X, features.y)]
    with _timed(timings, "map"):
        shown = embedding.map_rows(len(features.y), (r for f in results for r in f.rows),
                                   config.seed)
        coordinates = embedding.embed(features.X[shown], config.seed)
    inspection = Inspection(
        features=str(config.features),
        created=dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        n_images=len(features.y), label_names=features.label_names,
        settings=_settings(split, len(shown), config.seed), notes=notes, findings=results,
        warnings=warned)
    data = map_data(features.attrs.get("dataset_fingerprint"), len(features.y),
                    features.label_names, shown, coordinates, features.y, results)
    for line in notes + warned:  # the warning last, next to the counts it is about
        announce(line)
    with _timed(timings, "write"):
        folder = config.outputs / leakage.INSPECT_DIR / Path(config.features).stem
        _write_folder(folder, inspection, data, features.paths, root, config.outputs)
        write_index(config.outputs)
    return InspectResult(inspection, folder, folder / "index.html", timings)


def _read(path: Path) -> tuple[Features, list[str]]:
    """The checked features, and the notes on what they are."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", Float64Note)
        features = read_features(path)
    notes = [f"note: {w.message}" for w in caught if issubclass(w.category, Float64Note)]
    if len(features.y) < 2:
        raise InspectError(f"{path}: {len(features.y)} image(s); inspect compares images, so "
                           "it needs two or more (extract a folder with more images)")
    if features.attrs.get("weights") == "random":
        notes.append("note: features from random weights: near-duplicates are calibrated on "
                     "ImageNet features, so expect pairs of images that only look alike")
    present = np.unique(features.y)
    if len(present) < 2:
        notes.append(f"note: one class ({features.label_names[present[0]]}): no label errors "
                     "or leakage to look for; duplicates, outliers and the map only")
    return features, notes


def _image_notes(features: Features, root: Path | None, unreadable: list[int]) -> list[str]:
    """One note when the images cannot be read, however many they are."""
    skipped = ("their thumbnails and content hashes are skipped; the findings from the "
               "features are kept")
    if root is None:
        return [(f"note: the file names no dataset_root, so its images cannot be found: "
                f"{skipped}")]
    if unreadable:
        return [(f"note: {len(unreadable)} of {len(features.y)} images not found below {root} "
                f"(moved since extraction?): {skipped}")]
    return []


def _finding(features: Features, kind: str, score: float, rows: list[int], **extra: Any
             ) -> Finding:
    return Finding(kind, score, rows, [features.paths[r] for r in rows],
                   [features.label_names[features.y[r]] for r in rows], **extra)


def _leakage(features: Features, ranked: list[tuple[float, list[int]]], config: InspectConfig,
             notes: list[str]) -> tuple[list[Finding], str]:
    """The groups that straddle classify's split, and what the split was."""
    if len(np.unique(features.y)) < 2:
        return [], "none (one class)"
    try:
        sides, split = leakage.split_sides(features, config.test_size, config.seed)
    except protocol.ProtocolError as exc:
        notes.append(f"note: no leakage check: {exc}")
        return [], "none"
    return [_finding(features, "leakage", score, group, splits=[str(sides[r]) for r in group],
                     similarity=score)
            for score, group in ranked if leakage.straddling([group], sides)], split


def _label_errors(features: Features, seed: int, notes: list[str], warned: list[str]
                  ) -> list[Finding]:
    """The likely label errors among the classes of two images or more, and a warning
    in `warned` when the features separate those classes too poorly to trust them."""
    names = features.label_names
    counts = np.bincount(features.y, minlength=len(names))
    rows = np.flatnonzero(counts[features.y] >= 2)
    if len(np.unique(features.y[rows])) < 2:
        return []
    single = [names[c] for c in np.unique(features.y) if counts[c] < 2]
    if single:
        notes.append(f"note: {len(single)} class(es) with one image left out of the label "
                     f"check: {', '.join(single)}")
    check = labels.check_labels(features.X, features.y, rows, seed)
    if warning := check.warning():
        warned.append(warning)
    return [_finding(features, "label_error", 1.0 - issue.given_probability, [issue.row],
                     given_label=names[issue.given], suggested_label=names[issue.suggested],
                     probability=issue.suggested_probability,
                     given_probability=issue.given_probability)
            for issue in check.issues]


def _settings(split: str, shown: int, seed: int) -> dict[str, Any]:
    """How each kind of finding was looked for, as the page and findings.json say."""
    return {"near_duplicates": f"cosine distance <= {neighbours.RATIO} x each image's "
                               f"distance to its {neighbours.NEIGHBOURS}th neighbour, "
                               f"similarity >= {neighbours.FLOOR}",
            "split": split,
            "label_errors": f"cleanlab find_label_issues on {labels.FOLDS}-fold out-of-fold "
                            f"logistic regression (C={labels.C})",
            "outliers": f"{outliers.NEIGHBOURS}th neighbour in the class, modified z-score > "
                        f"{outliers.CUT_OFF}",
            "map": f"t-SNE of {shown} images", "seed": seed}


def _write_folder(folder: Path, inspection: Inspection, data: Any, paths: list[str],
                  root: Path | None, outputs: Path) -> None:
    """Every file written beside the folder, then swapped in for the earlier one."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.with_name(f".{folder.name}.{os.getpid()}.partial")
    shutil.rmtree(staging, ignore_errors=True)  # left by a run that was killed
    staging.mkdir()
    try:
        (staging / "findings.json").write_text(findings_json(inspection), encoding="utf-8")
        (staging / "findings.csv").write_text(findings_csv(inspection), encoding="utf-8")
        (staging / MAP_FILE).write_text(data.to_json(), encoding="utf-8")
        write_inspection_page(staging, inspection, data, paths, root, outputs / "index.html")
        earlier = folder.with_name(staging.name + ".earlier")
        if folder.exists():
            folder.rename(earlier)
        staging.rename(folder)
        shutil.rmtree(earlier, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
