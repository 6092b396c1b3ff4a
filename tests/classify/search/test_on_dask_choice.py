"""A cluster search chooses what the local one chooses on rows where C values tie and the
log-loss falls to the grid's end, where L-BFGS-B and newton-cg stop at different points
(C=100 on the cluster against C=1000 here, before the tie-break took the most
regularised C within a log-loss tolerance)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tests.helpers.classifying import only, run
from tests.helpers.featurefiles import write_feature_file


def test_local_and_cluster_choose_the_same_c_on_a_flat_log_loss_tail(tmp_path: Path,
                                                                      scheduler: str) -> None:
    features = write_feature_file(tmp_path / "near-vgg16-avg.h5", counts=(30,) * 4, dims=128,
                                  spread=0.4, seed=1)
    printed, metrics = [], []
    runs = ((tmp_path / "local", ()), (tmp_path / "cluster", ("--cluster", scheduler)))
    for outputs, extra in runs:
        result = run(outputs, "--features", str(features), "--jobs", "1", "--grid", "C", *extra)
        assert result.exit_code == 0, result.output
        printed.append([line for line in result.output.splitlines()
                        if line.startswith(("chosen ", "tie-break ", "grid edge "))])
        metrics.append(json.loads((only(outputs / "reports") / "metrics.json").read_text()))
    local, remote = metrics
    # The premise: the solvers' log-losses differ along the tail...
    losses = [[c["mean_log_loss"] for c in m["candidates"]] for m in metrics]
    assert np.abs(np.subtract(*losses)).max() > 0.005
    # ...and the choice does not.
    assert printed[0][0] == printed[1][0] == "chosen      C=10"
    assert printed[0][1].startswith("tie-break   ") and len(printed[0]) == len(printed[1]) == 2
    assert remote["best_params"] == local["best_params"]
