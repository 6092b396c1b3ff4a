"""Helpers for the fault tests: running `extract` for real, and comparing feature files."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from click.testing import CliRunner, Result

from extract import featurefile, parts
from extract.cli import main as extract_main
from tests.helpers.imagefolders import class_image

LAUNCHER = Path(__file__).with_name("launcher.py")
TIMEOUT_S = 240
# The one attribute that differs between two runs over the same images: when it ran.
VOLATILE_ATTRS = {"created"}
# TensorFlow's C++ start-up chatter on stderr; not ours to judge.
_TF_NOISE = re.compile(r"^(I0000|W0000|E0000|WARNING: All log messages|To enable the following)")


def extract_args(root: Path, out: Path | None, *extra: str, size: int = 32) -> list[str]:
    """The command every fault test runs: small, random weights, 5-row blocks, shards
    of about 8 images (the standard folder's 25 images make 4 parts)."""
    output = [] if out is None else ["--output", str(out)]
    return ["--dataset", str(root), "--backbone", "vgg16", "--weights", "random",
            "--image-size", str(size), "--batch-size", "4", "--buffer-size", "5",
            "--shard-size", "8", *output, *extra]


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
        data["attrs"] = {k: featurefile.plain(v) for k, v in f.attrs.items()
                         if k not in VOLATILE_ATTRS}
    return data


def differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The datasets and attributes in which two `contents` differ (dtype or bits)."""
    names = sorted(set(a) ^ set(b))
    for name in sorted(set(a) & set(b) - {"attrs"}):
        if a[name].dtype != b[name].dtype or not np.array_equal(a[name], b[name]):
            names.append(name)
    for key in sorted(set(a.get("attrs", {})) | set(b.get("attrs", {}))):
        if a.get("attrs", {}).get(key) != b.get("attrs", {}).get(key):
            names.append(f"attrs[{key}]")
    return names


# What an updated file says of itself that a file made from nothing does not.
UPDATE_ATTRS = ["attrs[n_computed]", "attrs[n_reused]"]


def assert_same_file(got: Path, want: Path, *, may_differ: Sequence[str] = ()) -> None:
    """Same rows, order, values (bit for bit), skipped list, names and settings."""
    found = [name for name in differences(contents(got), contents(want))
             if name not in may_differ]
    assert found == [], f"{got} and {want} differ in {found}"


def rows_lost(got: dict[str, Any], want: dict[str, Any]) -> int:
    """Reference rows not found, equal and in place, in `got` (0 means none lost)."""
    n = min(len(got["paths"]), len(want["paths"]))
    kept = sum(bool(got["paths"][i] == want["paths"][i]
                    and np.array_equal(got["features"][i], want["features"][i]))
               for i in range(n))
    return len(want["paths"]) - kept


def rerun_and_record(args: Sequence[str], out: Path, reference: Path, ledger: Any,
                     fault: str, *, partial_accepted: int = 0) -> Result:
    """Run the same extract again after `fault`, and record in the ledger what it lost."""
    rerun = extract_here(args)
    want = contents(reference)
    lost = rows_lost(contents(out), want) if rerun.exit_code == 0 else len(want["paths"])
    ledger.record(fault, recovered=rerun.exit_code == 0 and lost == 0, rows_lost=lost,
                  partial_accepted=partial_accepted)
    return rerun


def kill_site(output: Path) -> str:
    """What a killed run was doing, from what it left on disk."""
    folder = parts.folder(output)
    if output.with_name(output.name + ".tmp").exists():
        return "writing the feature file"
    if folder.is_dir() and any(folder.glob("*.h5.tmp")):
        return "writing a part"
    if folder.is_dir() and any(folder.glob("*.h5")):
        return "between parts, or removing them"
    return "before the first part, or after the last step"


def not_whole(output: Path, allowed: Sequence[dict[str, Any]]) -> list[str]:
    """What a kill must never leave under a final name: a feature file other than one
    of `allowed` (absent is fine), a part that is not complete or fails its digest."""
    faults = []
    if output.exists():
        try:
            whole = any(not differences(contents(output), want) for want in allowed)
        except OSError:
            whole = False
        if not whole:
            faults.append(f"{output} is neither absent nor a whole file")
    folder = parts.folder(output)
    for part in folder.glob("*.h5") if folder.is_dir() else []:
        if not parts.is_complete(part, key=featurefile.read_attrs(part).get("shard_key")):
            faults.append(f"{part} is published but not whole")
    return faults


def snapshot(folder: Path) -> dict[str, tuple[int, int, int, str]]:
    """Every file below `folder`: (size, mtime_ns, inode, sha256), to show it untouched."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            st = path.stat()
            found[str(path.relative_to(folder))] = (
                st.st_size, st.st_mtime_ns, st.st_ino,
                hashlib.sha256(path.read_bytes()).hexdigest())
    return found


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
