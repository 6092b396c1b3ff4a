"""The progress bar is timed from the end of the first batch, which carries the warm-up,
and a shard reports its images a batch at a time."""

import io
import re
import time

from extract.extraction import WarmedUpBar
from extract.plan import plan, shards
from extract.scan import scan
from extract.settings import RunOptions, Settings
from extract.shard import run_shard
from tests.helpers.imagefolders import make_folder
from tests.helpers.mappers import ZeroMapper


def _drawn(stream: io.StringIO) -> list[str]:
    return [line.strip() for line in stream.getvalue().replace("\r", "\n").split("\n")
            if line.strip()]


def test_the_rate_leaves_out_the_warm_up():
    drawn = io.StringIO()
    with WarmedUpBar(48, "vgg16", disable=False, file=drawn) as bar:
        time.sleep(1.0)  # the first batch: the reader's start, tracing the model
        bar.update(8)
        for _ in range(5):
            time.sleep(0.02)
            bar.update(8)
    lines = _drawn(drawn)
    assert lines[0].startswith("vgg16 (warming up):   0%")
    final = lines[-1]
    assert final.startswith("vgg16: 100%") and "48/48" in final, lines
    rate = float(re.search(r"([\d.]+)img/s", final).group(1))
    assert rate > 100, final  # 40 images in 0.1 s; with the warm-up counted, under 48/s



def test_a_shard_reports_its_images_a_batch_at_a_time(tmp_path):
    root = make_folder(tmp_path / "data", classes=2, per_class=5)
    options = RunOptions(batch_size=4)
    the_plan = plan(scan(root))
    (shard,) = shards(the_plan, list(range(len(the_plan))), identity="test", batch_size=4,
                      shard_size=100)
    reported: list[int] = []
    run_shard(shard, tmp_path / "part.h5", Settings("vgg16", "random", "avg", 32), options,
              ZeroMapper(), progress=reported.append)
    assert reported == [4, 4, 2]
