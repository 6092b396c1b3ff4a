"""The terminal stays quiet: no TensorFlow/absl/CUDA/libjpeg lines, real errors still shown."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from tests.helpers.imagefolders import make_folder

BIN = Path(sys.executable).parent
NATIVE_LOG_LINE = re.compile(r"^[IWEF]\d{4} |absl::|cuInit|JPEG|oneDNN|rebuild TensorFlow", re.MULTILINE)


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, check=False,
                          timeout=300, env={**os.environ, **(env or {})})


def _corrupt_folder(tmp_path: Path) -> Path:
    root = make_folder(tmp_path / "photos", classes=2, per_class=4)
    whole = (root / "class_0" / "img_000.jpg").read_bytes()
    (root / "class_0" / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    # A photo cut after its first few kilobytes: TensorFlow logs that one as an error.
    noise = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    photo = io.BytesIO()
    Image.fromarray(noise).save(photo, format="JPEG", quality=95)
    (root / "class_1" / "cut_early.jpg").write_bytes(photo.getvalue()[:3000])
    return root


def test_extract_and_predict_print_only_our_own_lines(tmp_path: Path) -> None:
    root = _corrupt_folder(tmp_path)
    extracted = _run(BIN / "extract", "--dataset", root, "--backbone", "efficientnet_lite0",
                     "--weights", "random", "--image-size", "32", cwd=tmp_path)
    assert extracted.returncode == 0, extracted.stderr
    assert not NATIVE_LOG_LINE.search(extracted.stderr), extracted.stderr
    assert extracted.stderr.count("truncated.jpg") == 1
    assert extracted.stderr.count("cut_early.jpg") == 1
    assert f"skipped (unreadable): {root / 'class_0' / 'truncated.jpg'}" in extracted.stderr

    trained = _run(BIN / "classify", "--model", "knn", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    model = next((tmp_path / "outputs" / "models").iterdir())
    predicted = _run(BIN / "predict", "--model", model, root, cwd=tmp_path)
    assert predicted.returncode == 0, predicted.stderr
    assert not NATIVE_LOG_LINE.search(predicted.stderr), predicted.stderr
    assert predicted.stderr.count("truncated.jpg") == 1
    assert predicted.stderr.count("cut_early.jpg") == 1


def test_unknown_native_lines_and_crashes_still_show(tmp_path: Path) -> None:
    script = (
        "import common.quiet, os, sys\n"
        "os.write(2, b'I0000 00:00:1796124019.154969    4899 port.cc:153] oneDNN notice\\n')\n"
        "os.write(2, b'Improper call to JPEG library in state 201\\n')\n"
        "os.write(2, b'F0000 00:00:1.0  12 op.cc:1] Check failed: a real problem\\n')\n"
        "print('from python', file=sys.stderr)\n"
        "os.abort()\n"
    )
    crashed = _run(sys.executable, "-c", script, cwd=tmp_path)
    assert crashed.returncode != 0
    assert "Check failed: a real problem" in crashed.stderr
    assert "from python" in crashed.stderr
    assert "oneDNN" not in crashed.stderr and "JPEG" not in crashed.stderr

    shown = _run(sys.executable, "-c", script, cwd=tmp_path,
                 env={"OFFTHESHELF_NATIVE_LOGS": "1"})
    assert "oneDNN notice" in shown.stderr and "JPEG library" in shown.stderr


def test_ctrl_c_to_the_process_group_leaves_the_filter_running(tmp_path: Path) -> None:
    script = (
        "import common.quiet, os, signal, time\n"
        "try:\n"
        "    os.killpg(os.getpgrp(), signal.SIGINT)\n"
        "    time.sleep(5)\n"
        "except KeyboardInterrupt:\n"
        "    os.write(2, b'native line after Ctrl-C\\n')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=False, start_new_session=True)
    assert "native line after Ctrl-C" in done.stderr
