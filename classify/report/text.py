"""report.txt: the human-readable summary of a run, from its typed records."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from classify.protocol import MIN_IMAGES_PER_CLASS
from classify.report.records import Candidate, Metrics
from classify.search.results import grid_edges
from common.text import table

NO_SEARCH = "none (no --grid): library defaults fitted once"


def format_value(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def format_params(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={format_value(v)}" for k, v in params.items()) or "(defaults)"


def candidates_table(candidates: Sequence[Candidate], score_name: str,
                     best: Mapping[str, Any], with_std: bool = True) -> list[str]:
    """The search's candidates, one line each: parameters, mean score (and its std across
    the folds, `with_std`: one fold has none), mean validation log-loss where the model
    has probabilities, fit time; the chosen one marked."""
    rows = [[format_params(c.params), f"{c.mean_score:.4f}",
             *([f"{c.std_score:.4f}"] if with_std else []),
             "-" if c.mean_log_loss is None else f"{c.mean_log_loss:.4f}",
             f"{c.mean_fit_seconds:.2f}", "<- chosen" if c.params == best else ""]
            for c in candidates]
    return table(rows, ["parameters", score_name, *(["std"] if with_std else []), "log-loss",
                        "fit s", ""])


def single_fold(metrics: Metrics) -> bool:
    """Whether the search validated on one fold (the given val part, scikit-learn's
    PredefinedSplit): its scores are that fold's, with no spread and no cross-validation."""
    return metrics.cv_used == 1


def score_name(metrics: Metrics) -> str:
    """What the search's scores are: "cv accuracy", or "val accuracy" on the one val fold."""
    return f"{'val' if single_fold(metrics) else 'cv'} {metrics.scoring}"


def chosen_score(metrics: Metrics) -> str:
    """The chosen candidate's score; where the tie-break took it below the top score,
    saying so beside the top (the tie-break's line or row says why)."""
    shown = f"{metrics.cv_score:.4f}"
    top = f"{max(c.mean_score for c in metrics.candidates):.4f}"
    return shown if top == shown else f"{shown} (chosen by the tie-break; the top is {top})"


def format_report(metrics: Metrics, classification_text: str) -> str:
    """The human-readable run summary, printed and saved as report.txt."""
    first = metrics.features[0]
    lines = []
    for source in metrics.features:
        lines += [
            f"features    {source.path}",
            (f"            backbone {source.extractor['backbone']}, pooling "
             f"{source.extractor['pooling']}, weights {source.extractor['weights']}"),
        ]
    if len(metrics.features) > 1:
        lines.append(f"            fused: {len(metrics.features)} files of the same images, "
                     "features concatenated in this order")
    lines += [
        (f"data        {metrics.n_train + metrics.n_test} x "
         f"{sum(s.dims for s in metrics.features)} float32, "
         f"{first.classes - len(metrics.dropped_classes)} classes; train {metrics.n_train}"
         f"{f' (val {metrics.protocol.n_val} of them)' if _val(metrics) else ''}, "
         f"test {metrics.n_test} ({protocol_text(metrics)})"),
        *([f"            of the file's {first.rows} images in {first.classes} classes; "
           + f"left out {_dropped_why(metrics)}: "
           + ", ".join(metrics.dropped_classes)] if metrics.dropped_classes else []),
        f"model       {metrics.model}: {metrics.model_summary}"
        + (" on standardised features" if metrics.scale else ""),
    ]
    if metrics.cluster:
        lines.append(f"cluster     {metrics.cluster} (Dask; features read by the workers)")
    if metrics.grid:
        grid = "; ".join(f"{name} in {', '.join(format_value(v) for v in values)}"
                         for name, values in metrics.grid.items())
        lines += [
            f"search      {grid}",
            (f"            {len(metrics.candidates)} candidate(s), "
             + ("validated on the given val part" if _val(metrics) else
                f"{metrics.cv_used}-fold stratified cv on the training part")
             + f", scored by {metrics.scoring}"),
            "",
            *("            " + line for line in candidates_table(
                metrics.candidates, score_name(metrics), metrics.best_params,
                with_std=not single_fold(metrics))),
            "",
            f"chosen      {format_params(metrics.best_params)}",
            f"{score_name(metrics)} {chosen_score(metrics)}",
        ]
        if metrics.tie_break:
            lines.append(f"tie-break   {metrics.tie_break}")
        if edge := grid_edges(metrics.grid, metrics.best_params):
            lines.append(f"grid edge   {edge}")
    else:
        lines.append(f"search      {NO_SEARCH}")
    lines += ["", classification_text.rstrip(), "", f"accuracy    {metrics.accuracy:.4f}"]
    if metrics.protocol is not None and metrics.protocol.kind == "per_class":
        lines.append(f"balanced    {metrics.balanced_accuracy:.4f} (mean per-class recall)")
    if metrics.draws:
        lines.append(f"draws       {draws_line(metrics)}")
    lines += [f"warning     {message}" for message in metrics.warnings]
    lines.append("time        " + ", ".join(f"{k} {v:.2f} s" for k, v in metrics.timings.items()))
    return "\n".join(lines) + "\n"


def protocol_text(metrics: Metrics) -> str:
    """How the rows were split, in words (runs recorded before protocols: a random split)."""
    if metrics.protocol is not None:
        return metrics.protocol.text
    return f"stratified, test size {metrics.test_size:g}, seed {metrics.seed}"


def _val(metrics: Metrics) -> bool:
    return metrics.protocol is not None and metrics.protocol.n_val > 0


def _dropped_why(metrics: Metrics) -> str:
    kind = metrics.protocol.kind if metrics.protocol is not None else "random"
    if kind == "given":
        return "of the test part, with no training image in the given split"
    if kind == "per_class":
        return (f"without {metrics.protocol.train_per_class} training images and a test "
                "image")
    return f"with fewer than {MIN_IMAGES_PER_CLASS} images"


def draws_line(metrics: Metrics) -> str:
    """--repeats: the draws' balanced accuracy (mean per-class recall) and accuracy, mean
    and standard deviation, and each draw's."""
    balanced = [draw.balanced_accuracy for draw in metrics.draws]
    accuracy = [draw.accuracy for draw in metrics.draws]
    seeds = [draw.seed for draw in metrics.draws]
    return (f"{len(balanced)} draws (seeds {seeds[0]}..{seeds[-1]}): balanced accuracy "
            f"{np.mean(balanced):.4f} ± {np.std(balanced):.4f} "
            f"({', '.join(f'{b:.4f}' for b in balanced)}); accuracy "
            f"{np.mean(accuracy):.4f} ± {np.std(accuracy):.4f}")
