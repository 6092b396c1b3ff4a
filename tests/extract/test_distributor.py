"""`extract --cluster`: shards on a local Dask cluster of 2 worker processes give the
file a single process writes, bit for bit, read back by plain h5py; a worker killed
mid-shard costs only that shard, which Dask runs again elsewhere."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from distributed import Client, LocalCluster

from extract import featurefile, parts
from extract.cli import main as extract_main
from tests.helpers.clusterkit import KillOnceAfterFirstBlock
from tests.helpers.imagefolders import make_folder

SETTINGS = ["--backbone", "vgg16", "--weights", "random", "--image-size", "64",
            "--batch-size", "4", "--buffer-size", "3"]
IMAGES = 30  # 3 classes x 10


def _extract(root: Path, out: Path, *extra: str) -> str:
    result = CliRunner().invoke(
        extract_main, ["--dataset", str(root), *SETTINGS, "--output", str(out), *extra])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_folder(tmp_path_factory.mktemp("images") / "data", classes=3, per_class=10)


@pytest.fixture(scope="module")
def reference(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The single-process extraction every cluster run must reproduce."""
    out = tmp_path_factory.mktemp("single") / "single.h5"
    _extract(folder, out)
    return out


@pytest.fixture(scope="module")
def cluster() -> str:
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as local:
        yield local.scheduler_address


def _same_rows(path: Path, reference: Path) -> None:
    with h5py.File(path, "r") as got, h5py.File(reference, "r") as want:
        assert np.array_equal(got["features"][()], want["features"][()])
        assert np.array_equal(got["labels"][()], want["labels"][()])
        assert list(got["paths"][()]) == list(want["paths"][()])
        assert list(got["skipped"][()]) == list(want["skipped"][()])
        assert list(got["label_names"][()]) == list(want["label_names"][()])


def test_cluster_file_is_bit_equal_and_plain_h5py_reads_it(folder, reference, cluster, tmp_path):
    out = tmp_path / "features" / "out.h5"
    output = _extract(folder, out, "--cluster", cluster, "--shard-size", "8")
    assert "shards run on 2 Dask worker(s)" in output
    assert f"created: {IMAGES} rows, 0 skipped" in output
    assert not parts.folder(out).exists()  # consolidated: the parts are gone
    _same_rows(out, reference)
    with h5py.File(out, "r") as f:
        assert not f["features"].is_virtual and not f["paths"].is_virtual
        assert f.attrs["complete"] and f.attrs["n_written"] == IMAGES
        want = featurefile.read_attrs(reference)
        for key in ("backbone", "weights", "pooling", "input_size", "dtype", "identity",
                    "dataset_fingerprint", "row_order"):
            assert f.attrs[key] == want[key]
    # The file is self-contained: it moves alone.
    moved = tmp_path / "elsewhere.h5"
    shutil.move(out, moved)
    assert np.array_equal(featurefile.read_features(moved).X, featurefile.read_features(reference).X)
    assert "reusing" in _extract(folder, moved, "--cluster", cluster, "--shard-size", "8")


def test_killed_worker_mid_shard_is_run_again_elsewhere(folder, reference, tmp_path):
    marker = tmp_path / "killed"
    out = tmp_path / "out.h5"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as local, Client(local) as client:
        client.register_plugin(KillOnceAfterFirstBlock(marker))
        output = _extract(folder, out, "--cluster", local.scheduler_address,
                          "--shard-size", "12")
    part, rows = marker.read_text().split()
    assert parts.folder(out) == Path(part).parent and int(rows) == 3
    assert f"created: {IMAGES} rows, 0 skipped" in output
    _same_rows(out, reference)


def test_unreadable_images_are_skipped_as_in_one_process(folder, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(folder, root)
    (root / "class_1" / "img_002.jpg").write_bytes(b"not a jpeg")
    (root / "class_2" / "img_009.jpg").write_bytes(b"")
    single, multi = tmp_path / "single.h5", tmp_path / "multi" / "out.h5"
    _extract(root, single)
    output = _extract(root, multi, "--cluster", "local:2", "--shard-size", "8")
    assert "28 rows, 2 skipped" in output
    assert sorted(featurefile.read_skipped(multi)) == ["class_1/img_002.jpg", "class_2/img_009.jpg"]
    _same_rows(multi, single)


def test_cluster_options_fail_in_one_line(folder, tmp_path):
    runner = CliRunner()
    base = ["--dataset", str(folder), *SETTINGS, "--output", str(tmp_path / "o.h5")]
    bad = runner.invoke(extract_main, [*base, "--cluster", "local:zero"])
    assert bad.exit_code == 2
    assert bad.output.splitlines()[-1] == ("Error: Invalid value for '--cluster': local:zero: "
                                           "expected local:N with N a positive number")
    unreachable = runner.invoke(extract_main, [*base, "--cluster", "tcp://127.0.0.1:9"])
    assert unreachable.exit_code == 1
    assert unreachable.output.splitlines()[-1].startswith(
        "Error: --cluster tcp://127.0.0.1:9: cannot reach the Dask scheduler")
    assert not (tmp_path / "o.h5").exists()


def test_shards_run_on_the_device_each_worker_picks(folder, reference, tmp_path):
    """Two logical CPU devices stand in for two GPUs: a shard placed on the second one
    gives the rows a single process gives."""
    part = tmp_path / "part.h5"
    part = tmp_path / "part.h5"
    script = textwrap.dedent(f"""
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from pathlib import Path
        from extract import distributor, plan
        from extract.scan import scan
        from extract.settings import RunOptions, Settings
        the_plan = plan.plan(scan({str(folder)!r}))
        assert distributor.worker_device("CPU").endswith("CPU:0")  # rank 0 outside Dask
        shard = plan.shards(the_plan, list(range(8, 16)), identity="x", batch_size=4,
                            shard_size=8)[0]
        job = distributor.ShardJob(shard, Path({str(part)!r}),
                                   Settings("vgg16", "random", "flatten", 64),
                                   RunOptions(batch_size=4, buffer_size=3))
        result = distributor.run_on_worker(job, device="/device:CPU:1")
        print(result.rows, shard.key)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    rows, key = done.stdout.split()[-2:]
    assert rows == "8"
    features, _, _, _ = parts.read(part, key=key)
    assert np.array_equal(features, featurefile.read_features(reference).X[8:16])


def test_ctrl_c_keeps_finished_shards_and_a_rerun_resumes(folder, reference, cluster, tmp_path):
    out = tmp_path / "out.h5"
    command = [sys.executable, "-m", "extract", "--dataset", str(folder), *SETTINGS,
               "--output", str(out), "--cluster", cluster, "--shard-size", "4"]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(parts.folder(out).glob("*.h5")) and time.monotonic() < deadline:
        time.sleep(0.05)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 130, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("interrupted: ") and last.endswith(
        f"finished shard(s) are kept in {parts.folder(out)}/; run the same command again to "
        "resume")
    assert not out.exists()
    output = _extract(folder, out, "--cluster", cluster, "--shard-size", "4")
    assert "resuming: " in output and f"resumed: {IMAGES} rows" in output
    _same_rows(out, reference)


def test_classify_on_the_cluster_reads_the_file(folder, cluster, tmp_path):
    from classify.cli import main as classify_main

    out = tmp_path / "outputs" / "features" / "data-vgg16-flatten.h5"
    _extract(folder, out, "--cluster", cluster, "--shard-size", "8")
    result = CliRunner().invoke(classify_main, [
        "--features", str(out), "--outputs", str(tmp_path / "outputs"), "--model", "logreg",
        "--grid", "C=0.1,1", "--cluster", cluster])
    assert result.exit_code == 0, result.output
    assert f"cluster {cluster}: 2 worker(s)" in result.output
    assert len((tmp_path / "outputs" / "results.csv").read_text().splitlines()) == 2
