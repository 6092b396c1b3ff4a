"""A real SIGKILL part-way through `extract`: the next run resumes, and the file
ends up holding exactly what an uninterrupted run writes."""

import signal
import subprocess
import sys
import time

import h5py
import numpy as np
from imagefolders import make_folder

from extract import store

IMAGES_PER_CLASS = 40


def _command(root, out):
    # Blocks of 6 rows and batches of 4: a resume usually starts mid-batch.
    return [sys.executable, "-m", "extract", "--dataset", str(root), "--backbone", "vgg16",
            "--weights", "random", "--image-size", "64", "--batch-size", "4",
            "--buffer-size", "6", "--output", str(out)]


def _rows_on_disk(path) -> int:
    try:
        with h5py.File(path, "r", locking=False) as f:
            return int(f.attrs["n_written"])
    except (OSError, KeyError):
        return 0


def test_sigkill_mid_run_resumes_to_the_same_file(tmp_path):
    root = make_folder(tmp_path / "data", classes=3, per_class=IMAGES_PER_CLASS)
    total = 3 * IMAGES_PER_CLASS
    reference = tmp_path / "reference.h5"
    subprocess.run(_command(root, reference), check=True, capture_output=True)

    out = tmp_path / "killed.h5"
    child = subprocess.Popen(_command(root, out), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while _rows_on_disk(out) < 12 and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait()
    killed_at = _rows_on_disk(out)
    assert 12 <= killed_at < total, f"kill landed at {killed_at} of {total} rows"
    assert not store.read_attrs(out)["complete"]

    resumed = subprocess.run(_command(root, out), capture_output=True, text=True, check=True)
    assert f"resuming after {killed_at} of {total} images" in resumed.stdout
    assert f"resumed: {total} images written, 0 skipped" in resumed.stdout

    want, got = store.read_features(reference), store.read_features(out)
    assert got.paths == want.paths
    np.testing.assert_array_equal(got.y, want.y)
    np.testing.assert_array_equal(got.X, want.X)
