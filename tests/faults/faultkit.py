"""Helpers for the fault tests: running `extract` for real, and comparing feature files."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from click.testing import CliRunner, Result
from imagefolders import class_image

from extract.cli import main as extract_main

LAUNCHER = Path(__file__).with_name("launcher.py")
TIMEOUT_S = 240
# Attributes that legitimately differ between two runs over equal images.
VOLATILE_ATTRS = {"created", "dataset_root"}
# TensorFlow's C++ start-up chatter on stderr; not ours to judge.
_TF_NOISE = re.compile(r"^(I0000|W0000|E0000|WARNING: All log messages|To enable the following)")


def extract_args(root: Path, out: Path, *extra: str, size: int = 32) -> list[str]:
    """The command every fault test runs: small, random weights, blocks of 5 rows."""
    return ["--dataset", str(root), "--backbone", "vgg16", "--weights", "random",
            "--image-size", str(size), "--batch-size", "4", "--buffer-size", "5",
            "--output", str(out), *extra]


def run_launcher(point: str, args: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess:
    """Run `extract` in a child with the fault `point` armed (see launcher.py)."""
    return subprocess.run([sys.executable, str(LAUNCHER), point, "--", *args], check=False,
                          capture_output=True, text=True, timeout=TIMEOUT_S, **kwargs)


def run_extract(args: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess:
    """Run the real `extract` command in a child process."""
    return subprocess.run([sys.executable, "-m", "extract", *args], check=False,
                          capture_output=True, text=True, timeout=TIMEOUT_S, **kwargs)


def extract_here(args: Sequence[str]) -> Result:
    """Run `extract` in this process (TensorFlow stays loaded: the cheap way to rerun)."""
    return CliRunner().invoke(extract_main, list(args))


def user_lines(stderr: str) -> list[str]:
    """stderr as the user reads it: progress-bar redraws and TensorFlow chatter removed."""
    lines = []
    for line in stderr.splitlines():
        line = line.rsplit("\r", 1)[-1].strip()
        if line and not _TF_NOISE.match(line) and not re.match(r"^vgg16: +\d+%", line):
            lines.append(line)
    return lines


def assert_one_error_line(stderr: str, *fragments: str) -> str:
    """Exactly one `Error:` line, holding every fragment, and no traceback anywhere."""
    assert "Traceback" not in stderr, stderr
    errors = [line for line in user_lines(stderr) if line.startswith("Error:")]
    assert len(errors) == 1, stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def contents(path: Path) -> dict[str, Any]:
    """Everything a feature file holds (datasets raw, attributes), for exact comparison."""
    with h5py.File(path, "r") as f:
        data: dict[str, Any] = {name: f[name][()] for name in f}
        data["attrs"] = {k: v for k, v in f.attrs.items() if k not in VOLATILE_ATTRS}
    return data


def rows_lost(got: Path, want: Path) -> int:
    """Reference rows not found, equal and in place, in `got` (0 means none lost)."""
    a, b = contents(got), contents(want)
    n = min(len(a["paths"]), len(b["paths"]))
    same = (a["paths"][:n] == b["paths"][:n]) & (a["labels"][:n] == b["labels"][:n])
    same &= np.array([np.array_equal(a["features"][i], b["features"][i]) for i in range(n)],
                     dtype=bool)
    return len(b["paths"]) - int(same.sum())


def rerun_and_record(args: Sequence[str], out: Path, reference: Path, ledger: Any,
                     fault: str, *, all_rows: int, partial_accepted: int = 0) -> Result:
    """Run the same extract again after `fault`, and record in the ledger what it lost."""
    rerun = extract_here(args)
    lost = rows_lost(out, reference) if rerun.exit_code == 0 else all_rows
    ledger.record(fault, recovered=rerun.exit_code == 0 and lost == 0, rows_lost=lost,
                  partial_accepted=partial_accepted)
    return rerun


def assert_same_file(got: Path, want: Path) -> None:
    """Same rows, order, values (bit for bit), skipped list and settings."""
    a, b = contents(got), contents(want)
    assert sorted(a) == sorted(b)
    for name in b:
        if name == "attrs":
            assert sorted(a[name]) == sorted(b[name])
            for key, value in b[name].items():
                assert np.array_equal(a[name][key], value), key
        else:
            assert a[name].dtype == b[name].dtype, name
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def raw_rows(path: Path) -> int:
    """Rows physically present in `features`, whatever n_written says."""
    with h5py.File(path, "r") as f:
        return int(f["features"].shape[0])


def make_dataset(root: Path, *, classes: int = 3, per_class: int = 8,
                 broken: bool = True) -> Path:
    """JPEG class folders plus, when `broken`, one truncated image that is skipped."""
    for label in range(classes):
        folder = root / f"class_{label}"
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            class_image(label, index).save(folder / f"img_{index:03d}.jpg")
    if broken:
        good = (root / "class_1" / "img_000.jpg").read_bytes()
        (root / "class_1" / "img_003b.jpg").write_bytes(good[: len(good) // 3])
    return root


def save_uncompressed_png(image: Any, path: Path) -> None:
    """PNG without compression: equal dimensions give equal file sizes."""
    image.save(path, compress_level=0)


def preexec(*steps: Callable[[], None]) -> Callable[[], None]:
    """One preexec_fn running `steps` in the child before it starts."""
    def run() -> None:
        for step in steps:
            step()
    return run


def peak_rss_run(cmd: Sequence[str], stdout: Path, stderr: Path,
                 cwd: Path | None = None) -> tuple[int, int]:
    """Run `cmd`; return (exit status, peak resident memory in bytes) from wait4."""
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        child = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=cwd)
        watchdog = threading.Timer(TIMEOUT_S, child.kill)
        watchdog.start()
        try:
            _, status, usage = os.wait4(child.pid, 0)
        finally:
            watchdog.cancel()
        child.returncode = os.waitstatus_to_exitcode(status)
    return child.returncode, usage.ru_maxrss * 1024  # ru_maxrss is in KiB on Linux
