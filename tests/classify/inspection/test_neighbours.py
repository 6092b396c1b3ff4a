"""The blocked neighbour search and the near-duplicate rule, on numbers with a known answer."""

from __future__ import annotations

import numpy as np

from classify.inspection.neighbours import (
    ArrayRows,
    groups,
    near_duplicate_pairs,
    nearest,
)


def test_blocked_search_finds_the_same_neighbours_as_the_whole_matrix() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 24)).astype(np.float32)
    X[7] = 0  # a row of zeros is nobody's near-duplicate and breaks nothing
    unit = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-30)
    whole = unit @ unit.T
    np.fill_diagonal(whole, -np.inf)
    expected = np.sort(whole, axis=1)[:, ::-1][:, :6]
    # Blocks of 40 x 40 similarities, over rows held in three arrays end to end.
    found = nearest(ArrayRows([X[:100], X[100:101], X[101:]]), k=6, block_bytes=4 * 40 * 40)
    np.testing.assert_allclose(found.similarities, expected, atol=1e-5)
    assert not (found.indices == np.arange(300)[:, None]).any()  # never a row itself


def test_a_copy_is_paired_where_a_dense_cluster_of_look_alikes_is_not() -> None:
    rng = np.random.default_rng(1)
    centre = rng.normal(size=64)
    look_alikes = centre + 0.25 * rng.normal(size=(40, 64))  # cosine ~0.94 to each other
    sparse = rng.normal(size=(40, 64))
    copy = sparse[3] + 0.05 * rng.normal(size=64)
    X = np.vstack([look_alikes, sparse, copy]).astype(np.float32)
    pairs = near_duplicate_pairs(nearest(ArrayRows([X])))
    assert [(p.first, p.second) for p in pairs] == [(43, 80)]
    assert pairs[0].similarity > 0.99


def test_identical_rows_beyond_k_form_one_group() -> None:
    rng = np.random.default_rng(2)
    X = np.vstack([np.repeat(rng.normal(size=(1, 16)), 14, axis=0),
                   rng.normal(size=(30, 16))]).astype(np.float32)
    pairs = near_duplicate_pairs(nearest(ArrayRows([X]), k=10))
    assert groups(len(X), [(p.first, p.second) for p in pairs]) == [list(range(14))]
