"""The map: a seeded 2-D t-SNE of the rows (unit-length rows, so distances follow the
cosine, reduced to 50 principal components first, as is usual).

t-SNE was measured against UMAP (README, section "inspect"): on a thousand photos it
keeps neighbourhoods better and is three times faster in a fresh process (UMAP compiles
its numba kernels each time, 10-15 s), and at MAP_POINTS it is still twice as fast. The
map shows at most MAP_POINTS rows (every image a finding names, then a sample of the
rest), which bounds its time and the page's size however large the file.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

MAP_POINTS = 5000
COMPONENTS = 50
PERPLEXITY = 30.0  # scikit-learn's default, lowered for a few dozen rows


def map_rows(n_rows: int, marked: Iterable[int], seed: int, limit: int = MAP_POINTS
             ) -> np.ndarray:
    """The rows the map shows: all of them, or the `marked` ones and a seeded sample."""
    if n_rows <= limit:
        return np.arange(n_rows)
    chosen = np.unique(np.fromiter(marked, dtype=np.int64))[:limit]
    rest = np.setdiff1d(np.arange(n_rows), chosen)
    extra = np.random.default_rng(seed).choice(rest, limit - len(chosen), replace=False)
    return np.sort(np.concatenate([chosen, extra]))


def embed(X: np.ndarray, seed: int) -> np.ndarray:
    """(N, 2) coordinates scaled to 0..1; fewer than 4 rows lie on a line."""
    if len(X) < 4:
        return np.column_stack([np.linspace(0, 1, len(X)), np.full(len(X), 0.5)])
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    norms = np.linalg.norm(X, axis=1, keepdims=True)
    unit = np.asarray(X, dtype=np.float32) / np.where(norms > 0, norms, 1)
    components = min(COMPONENTS, *unit.shape)
    reduced = PCA(components, random_state=seed).fit_transform(unit)
    coordinates = TSNE(2, init="pca", random_state=seed,
                       perplexity=min(PERPLEXITY, (len(X) - 1) / 3)).fit_transform(reduced)
    coordinates = np.asarray(coordinates, dtype=np.float64)
    low, high = coordinates.min(axis=0), coordinates.max(axis=0)
    return (coordinates - low) / np.where(high > low, high - low, 1.0)
