"""report.txt: the human-readable summary of a run, from its typed records."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from classify.protocol import MIN_IMAGES_PER_CLASS
from classify.report.records import Candidate, Metrics
from common.text import table


def format_value(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def format_params(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={format_value(v)}" for k, v in params.items()) or "(defaults)"


def candidates_table(candidates: Sequence[Candidate], scoring: str, best: Mapping[str, Any]
                     ) -> list[str]:
    """The search's candidates, one line each: parameters, CV score mean and std, mean
    validation log-loss where the model has probabilities, fit time; the chosen one marked."""
    rows = [[format_params(c.params), f"{c.mean_score:.4f}", f"{c.std_score:.4f}",
             "-" if c.mean_log_loss is None else f"{c.mean_log_loss:.4f}",
             f"{c.mean_fit_seconds:.2f}", "<- chosen" if c.params == best else ""]
            for c in candidates]
    return table(rows, ["parameters", f"cv {scoring}", "std", "log-loss", "fit s", ""])


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
         f"{first.classes - len(metrics.dropped_classes)} classes; train {metrics.n_train}, "
         f"test {metrics.n_test} (stratified, test size {metrics.test_size:g}, "
         f"seed {metrics.seed})"),
        *([f"            of the file's {first.rows} images in {first.classes} classes; "
           + f"left out with fewer than {MIN_IMAGES_PER_CLASS} images: "
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
            (f"            {len(metrics.candidates)} candidate(s), {metrics.cv_used}-fold "
             f"stratified cv on the training part, scored by {metrics.scoring}"),
            "",
            *("            " + line for line in candidates_table(
                metrics.candidates, metrics.scoring, metrics.best_params)),
            "",
            f"best        {format_params(metrics.best_params)}",
            f"cv {metrics.scoring} {metrics.cv_score:.4f}",
        ]
        if metrics.tie_break:
            lines.append(f"tie-break   {metrics.tie_break}")
    else:
        lines.append("search      none (no --grid): library defaults fitted once")
    lines += ["", classification_text.rstrip(), "", f"accuracy    {metrics.accuracy:.4f}"]
    lines += [f"warning     {message}" for message in metrics.warnings]
    lines.append("time        " + ", ".join(f"{k} {v:.2f} s" for k, v in metrics.timings.items()))
    return "\n".join(lines) + "\n"
