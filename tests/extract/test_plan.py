"""The plan: rows in a seeded order, shards cut between batches."""

import itertools

from extract import featurefile
from extract.plan import ROW_ORDER, shard_sizes
from tests.helpers.extracting import extract_small
from tests.helpers.imagefolders import make_folder


def test_rows_are_in_a_seeded_order_the_same_for_every_backbone(tmp_path):
    root = make_folder(tmp_path / "data", classes=3, per_class=8)
    assert extract_small(root, tmp_path / "a.h5").exit_code == 0
    assert extract_small(root, tmp_path / "b.h5", "--pooling", "max").exit_code == 0
    a, b = featurefile.read_features(tmp_path / "a.h5"), featurefile.read_features(tmp_path / "b.h5")
    assert a.paths == b.paths and a.attrs["row_order"] == ROW_ORDER
    assert a.paths != sorted(a.paths)
    # The classic split by index (train on the first 75%) sees every class on both sides.
    cut = int(len(a.y) * 0.75)
    assert set(a.y[:cut]) == set(a.y[cut:]) == {0, 1, 2}


def test_plan_cuts_between_batches_and_covers_every_image_once() -> None:
    for n, batch, shard in [(30, 4, 8), (1360, 32, 1024), (5, 32, 1024), (1000, 1, 7)]:
        plan = shard_sizes(n, batch, shard)
        assert plan[0][0] == 0 and plan[-1][1] == n
        assert all(a < b for a, b in plan)
        assert all(b == c for (_, b), (c, _) in itertools.pairwise(plan))
        assert all(start % batch == 0 for start, _ in plan)
        assert len(plan) == min(-(-n // batch), -(-n // shard))
    assert shard_sizes(1360, 32, 1024) == [(0, 672), (672, 1360)]

