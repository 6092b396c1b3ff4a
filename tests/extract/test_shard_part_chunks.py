"""A part file is chunked to at most its shard's rows, so a small shard makes a small file
whatever --buffer-size (new-user pass 2, item 8: a 32-row part took 4.2 MB)."""

from __future__ import annotations

import h5py

from extract.plan import plan, shards
from extract.scan import scan
from extract.settings import RunOptions, Settings
from extract.shard import run_shard
from tests.helpers.imagefolders import make_folder
from tests.helpers.mappers import ZeroMapper


def test_a_small_shards_part_is_chunked_to_its_rows(tmp_path):
    root = make_folder(tmp_path / "data", classes=2, per_class=2)
    the_plan = plan(scan(root))
    (shard,) = shards(the_plan, list(range(len(the_plan))), identity="test", batch_size=4,
                      shard_size=100)
    part = tmp_path / "part.h5"
    run_shard(shard, part, Settings("vgg16", "random", "avg", 32),
              RunOptions(batch_size=4, buffer_size=1000), ZeroMapper(feature_dim=1280))
    with h5py.File(part, "r") as f:
        assert f["features"].shape == (4, 1280)
        assert f["features"].chunks == (4, 1280)
    assert part.stat().st_size < 100_000  # 20 KB of rows; one 819-row chunk was 4.2 MB
