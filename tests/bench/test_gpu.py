"""bench.gpu's smoke mode: the GPU script's every step, on this CPU, on a few images."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_script_smoke_mode_runs_every_step(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-m", "bench.gpu", "--smoke"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    figures = json.loads((tmp_path / "outputs" / "bench" / "gpu-smoke.json").read_text())
    runs = {(row["backbone"], row["precision"]) for row in figures["rows"]}
    assert runs == {("resnet50", "float32"), ("resnet50", "float16"), ("vgg16", "float32"),
                    ("vgg16", "float16"), ("efficientnet_lite0", "float32")}
    assert all(row["e2e_img_s"] > 0 and row["forward_img_s"] > 0 for row in figures["rows"])
    steps = [step["step"] for step in figures["steps"]]
    assert steps[0].startswith("extract") and steps.count("classify --model xgb (one fit)") == 2
    assert "bench.gpu done in" in done.stdout
