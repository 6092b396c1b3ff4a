"""What a run leaves behind: report.txt, metrics.json, confusion.png, the model bundle
(classify.bundles) and the ledger row, all from the run's typed records."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from classify.protocol import MIN_IMAGES_PER_CLASS
from classify.records import Candidate, LedgerRow, Metrics, ModelBundle

AVERAGES = ("macro avg", "weighted avg")


@dataclass
class Evaluation:
    """Test-part figures, from scikit-learn's classification_report and confusion_matrix."""

    text: str
    table: dict[str, Any]  # classification_report(output_dict=True)
    labels: list[int]  # encoded classes present in the test part or the predictions
    confusion: np.ndarray

    @property
    def accuracy(self) -> float:
        return float(self.table["accuracy"])

    @property
    def macro_f1(self) -> float:
        return float(self.table["macro avg"]["f1-score"])

    def summary(self) -> dict[str, float]:
        """Accuracy and the macro/weighted precision, recall and F1."""
        figures = {"accuracy": self.accuracy}
        for average in AVERAGES:
            kind = average.split()[0]
            for metric in ("precision", "recall", "f1-score"):
                figures[f"{kind}_{metric.replace('-score', '')}"] = float(
                    self.table[average][metric]
                )
        return figures

    def per_class(self) -> dict[str, dict[str, float]]:
        return {
            name: values
            for name, values in self.table.items()
            if name not in ("accuracy", *AVERAGES)
        }


def evaluate(y_test: np.ndarray, y_pred: np.ndarray, label_names: Sequence[str]) -> Evaluation:
    """The familiar precision/recall report, with class names, on the test part."""
    from sklearn.metrics import classification_report, confusion_matrix

    labels = sorted(set(np.unique(y_test).tolist()) | set(np.unique(y_pred).tolist()))
    names = [label_names[i] for i in labels]
    options = {"labels": labels, "target_names": names, "zero_division": 0, "digits": 4}
    return Evaluation(
        text=classification_report(y_test, y_pred, **options),
        table=classification_report(y_test, y_pred, output_dict=True, **options),
        labels=labels,
        confusion=confusion_matrix(y_test, y_pred, labels=labels),
    )


def run_name(outputs: Path, features_stem: str, model: str) -> str:
    """`<features-stem>-<model>-<timestamp>`, suffixed when a run of the same second exists."""
    base = f"{features_stem}-{model}-{dt.datetime.now():%Y%m%d-%H%M%S}"
    name, n = base, 1
    while (outputs / "reports" / name).exists() or (outputs / "models" / name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def format_value(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def format_params(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={format_value(v)}" for k, v in params.items()) or "(defaults)"


def write_confusion(
    path: Path, evaluation: Evaluation, label_names: Sequence[str], title: str
) -> None:
    """Confusion matrix as PNG: rows coloured by recall, counts written when there is room.

    Figure and font sizes follow the number of classes so 101 names stay legible.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = [label_names[i] for i in evaluation.labels]
    k = len(names)
    side = min(40.0, max(6.0, 0.25 * k + 3.0))
    font = max(6.5, min(10.0, 12.0 - k / 18.0))  # tick labels; 0.25 in per class row
    counts = evaluation.confusion
    totals = counts.sum(axis=1, keepdims=True)
    fractions = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)

    figure = Figure(figsize=(side + 1.5, side), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    image = axes.imshow(fractions, cmap="Blues", vmin=0.0, vmax=1.0)
    colorbar = figure.colorbar(image, ax=axes, shrink=0.6)
    colorbar.set_label("fraction of the true class", fontsize=12)
    axes.set_xticks(range(k), names, rotation=90, fontsize=font)
    axes.set_yticks(range(k), names, fontsize=font)
    axes.set_xlabel("Predicted class", fontsize=14)
    axes.set_ylabel("True class", fontsize=14)
    axes.set_title(title, fontsize=16)
    if k <= 30:
        for (row, col), count in np.ndenumerate(counts):
            if count:
                colour = "white" if fractions[row, col] > 0.5 else "black"
                axes.text(
                    col, row, str(count), ha="center", va="center", fontsize=font, color=colour
                )
    figure.savefig(path, dpi=100)


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, default=_jsonable) + "\n", encoding="utf-8")


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def library_versions() -> dict[str, str]:
    """Versions that decide whether a saved estimator loads and behaves the same."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for name in ("scikit-learn", "numpy", "joblib", "xgboost"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return versions


def candidates_table(candidates: Sequence[Candidate], scoring: str, best: Mapping[str, Any]
                     ) -> list[str]:
    """The search's candidates, one line each: parameters, CV score mean and std, mean
    validation log-loss where the model has probabilities, fit time; the chosen one marked."""
    rows = [[format_params(c.params), f"{c.mean_score:.4f}", f"{c.std_score:.4f}",
             "-" if c.mean_log_loss is None else f"{c.mean_log_loss:.4f}",
             f"{c.mean_fit_seconds:.2f}", "<- chosen" if c.params == best else ""]
            for c in candidates]
    header = ["parameters", f"cv {scoring}", "std", "log-loss", "fit s", ""]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
            for row in [header, *rows]]


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


def save_run(metrics: Metrics, text: str, evaluation: Evaluation, bundle: ModelBundle) -> None:
    """The model bundle, report.txt and confusion.png (metrics.json follows, with timings)."""
    from classify.bundles import save_bundle

    save_bundle(Path(metrics.model_dir), bundle)
    report_dir = Path(metrics.report_dir)
    report_dir.mkdir(parents=True)
    (report_dir / "report.txt").write_text(text, encoding="utf-8")
    stem = Path(metrics.features[0].path).stem
    title = f"{stem} / {metrics.model}: accuracy {evaluation.accuracy:.4f}"
    write_confusion(report_dir / "confusion.png", evaluation, bundle.label_names, title)


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
