"""confusion.png: the test part's confusion matrix, drawn with matplotlib (no display)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from classify.report.evaluation import Evaluation


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
    _fit_title(figure, title, fontsize=16)
    if k <= 30:
        for (row, col), count in np.ndenumerate(counts):
            if count:
                colour = "white" if fractions[row, col] > 0.5 else "black"
                axes.text(
                    col, row, str(count), ha="center", va="center", fontsize=font, color=colour
                )
    figure.savefig(path, dpi=100, metadata={"Title": title})


def _fit_title(figure: Any, title: str, fontsize: float) -> None:
    """The title centred over the whole figure (the colour bar included), wrapped at
    spaces where it would run past the edges: fused files' names make it long."""
    text = figure.suptitle(title, fontsize=fontsize)
    room = 0.96 * figure.bbox.width
    width = text.get_window_extent(figure.canvas.get_renderer()).width
    if width <= room:
        return
    lines = title.splitlines()
    chars = max(20, int(max(map(len, lines)) * room / width))
    text.set_text("\n".join(part for line in lines
                            for part in textwrap.wrap(line, chars, break_on_hyphens=False)))
