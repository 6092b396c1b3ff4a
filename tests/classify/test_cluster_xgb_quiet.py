"""`classify --cluster local:N --model xgb` shows our lines only, not XGBoost's workers'."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers.featurefiles import write_feature_file


def test_xgboost_workers_do_not_announce_their_rank(tmp_path: Path) -> None:
    features = write_feature_file(tmp_path / "toy-vgg16-avg.h5", counts=(20, 20, 20), dims=8)
    command = [sys.executable, "-m", "classify", "--features", str(features), "--model", "xgb",
               "--cluster", "local:2", "--outputs", str(tmp_path / "outputs")]
    # stderr is a pipe here, as it is under `| tee`; the workers write to it directly.
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "fitting xgb with its defaults" in done.stdout
    assert "got rank" not in done.stderr + done.stdout, done.stderr
