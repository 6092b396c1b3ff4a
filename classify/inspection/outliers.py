"""Outliers: images far from every other image of their class.

An image's score is its cosine distance to its k-th nearest neighbour within its class,
divided by the median of that distance over the class, so that a loose class (lilies of
the valley, photographed from afar) does not fill the list. Images whose score stands
out from all the others' (a modified z-score above CUT_OFF, from the median and the
median absolute deviation) are reported, the farthest first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from classify.inspection.neighbours import ArrayRows, nearest

NEIGHBOURS = 5
CUT_OFF = 3.5  # Iglewicz and Hoaglin's usual cut-off for the modified z-score


@dataclass
class Outlier:
    row: int
    distance: float  # to the k-th nearest image of its class
    score: float  # distance / the class's median distance


def outliers(X: np.ndarray, y: np.ndarray) -> list[Outlier]:
    """The images whose class-relative distance stands out, farthest first."""
    distance = np.zeros(len(y))
    relative = np.full(len(y), np.nan)
    for label in np.unique(y):
        rows = np.flatnonzero(y == label)
        if len(rows) < 3:  # no neighbourhood to stand out from
            continue
        found = nearest(ArrayRows([X[rows]]), min(NEIGHBOURS, len(rows) - 1))
        distance[rows] = found.kth_distance()
        median = float(np.median(distance[rows]))
        relative[rows] = distance[rows] / median if median > 0 else 1.0
    scored = np.flatnonzero(~np.isnan(relative))
    if not len(scored):
        return []
    centre = float(np.median(relative[scored]))
    spread = float(np.median(np.abs(relative[scored] - centre)))
    if spread == 0:
        return []
    z = 0.6745 * (relative[scored] - centre) / spread
    flagged = scored[z > CUT_OFF]
    flagged = flagged[np.argsort(-relative[flagged], kind="stable")]
    return [Outlier(int(row), float(distance[row]), float(relative[row])) for row in flagged]
