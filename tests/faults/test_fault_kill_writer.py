"""SIGKILL at uniformly random moments of the real writers, 300 times and more.

kill_writer_child.py forks one run of the real engine per attempt (synthetic 25,088-wide
rows instead of a model) and kills it at a moment drawn uniformly from an uninterrupted
run's duration: inside HDF5's writes, fsyncs and renames, not only between Python lines.
Each kill is followed by the same command until one run finishes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers.faultkit import TIMEOUT_S

CHILD = Path(__file__).with_name("kill_writer_child.py")
KILLS = 300


def test_random_sigkills_of_the_writers(tmp_path: Path, ledger) -> None:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(CHILD), str(tmp_path), str(KILLS), "13"],
                          check=False, capture_output=True, text=True, timeout=2 * TIMEOUT_S,
                          env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    ledger.add("SIGKILL at random moments (writers)", injected=summary["kills"],
               recovered=summary["kills"] - len(summary["rerun_failures"]),
               rows_lost=summary["rows_lost"], partial_accepted=summary["partial_accepted"])

    assert summary["kills"] >= KILLS
    assert summary["rerun_failures"] == [], summary["rerun_failures"][:5]
    assert summary["rows_lost"] == 0
    assert summary["partial_accepted"] == 0
    # The kills landed everywhere, writes included (the names are the child's `where`).
    assert summary["where"].get("writing a part", 0) >= KILLS // 10, summary["where"]
    assert summary["where"].get("writing the feature file", 0) >= KILLS // 10, summary["where"]
    # Spread over the whole run: each tenth of its duration drew kills.
    tenths = {int(10 * f) for f in summary["fractions"]}
    assert tenths == set(range(10)), sorted(tenths)
    # The update copied the old rows, and its file is the one a fresh run writes.
    assert summary["rows"] == [45, 60] and summary["reused"] == [0, 45]
    assert summary["update_differs_from_fresh"] == ["attrs[n_computed]", "attrs[n_reused]"]
