"""SIGKILL of the real `extract` command at uniformly random moments of its writing.

Each attempt is a fresh `python -m extract`. Its writing begins when the first part's
temporary file (or, with every part done, the feature file's) appears, and ends when
its file is in place and its parts are removed; the kill comes after a delay drawn
uniformly from how long uninterrupted runs write (the median of those seen so far, as
the machine's speed drifts), so it lands in TensorFlow's batches, HDF5's writes,
fsyncs, renames and the clean-up in proportion to their time. (Before that moment the
run only loads TensorFlow, and after it only exits: kills there leave nothing to
recover, and would cost seconds each.) The same command then runs again,
and is itself killed three times in four, until one run finishes: it must succeed, and
its file must equal the uninterrupted run's, bit for bit.

A start of TensorFlow costs seconds, so the default suite kills 3 times; the
`long` variant, which .ci/run runs, kills 50 times.
"""

from __future__ import annotations

import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from extract import parts
from tests.helpers.faultkit import (
    TIMEOUT_S,
    contents,
    differences,
    extract_args,
    kill_site,
    not_whole,
    rows_lost,
)

POLL_S = 0.005


def _writing(out: Path, since_ns: int) -> bool:
    """Whether a temporary file (a part's, the feature file's) was written since then;
    one a killed run left behind does not count."""
    tmp = [*parts.folder(out).glob("*.h5.tmp"), out.with_name(out.name + ".tmp")]
    for path in tmp:
        try:
            if path.stat().st_mtime_ns >= since_ns:
                return True
        except FileNotFoundError:
            continue
    return False


def _start(args: list[str], log: Path) -> subprocess.Popen:
    started_ns = time.time_ns()
    with open(log, "ab") as sink:
        child = subprocess.Popen([sys.executable, "-m", "extract", *args], stdout=sink,
                                 stderr=sink)
    child.started_ns = started_ns
    return child


def _until_writing(child: subprocess.Popen, out: Path) -> float | None:
    """When the child began to write (perf_counter), or None if it ended first."""
    deadline = time.monotonic() + TIMEOUT_S
    while child.poll() is None and time.monotonic() < deadline:
        if _writing(out, child.started_ns):
            return time.perf_counter()
        time.sleep(POLL_S)
    return None


def _finished(out: Path) -> bool:
    """The file in place and its parts gone: after that only the interpreter's exit is
    left, which writes nothing."""
    return out.exists() and not parts.folder(out).exists()


def _until_done(child: subprocess.Popen, out: Path, began: float) -> float:
    """How long the child wrote, from `began` until `_finished`."""
    while child.poll() is None and not _finished(out):
        time.sleep(POLL_S)
    return time.perf_counter() - began


def _kill_and_rerun(kills: int, standard: tuple[Path, Path], tmp_path: Path,
                    ledger) -> None:
    root, reference = standard
    want = contents(reference)
    rng = random.Random(kills)
    log = tmp_path / "extract.log"
    probe = tmp_path / "probe.h5"
    child = _start(extract_args(root, probe), log)
    began = _until_writing(child, probe)
    assert began is not None, log.read_text()[-3000:]
    windows = [_until_done(child, probe, began)]  # of uninterrupted runs from nothing
    assert child.wait(TIMEOUT_S) == 0, log.read_text()[-3000:]
    assert differences(contents(probe), want) == []  # a child writes what this process did

    done = cycles = lost = 0
    failures: list[str] = []
    where: dict[str, int] = {}
    while done < kills:
        cycles += 1
        out = tmp_path / f"cycle{cycles}" / "features.h5"
        args = extract_args(root, out)
        first = True
        while True:
            child = _start(args, log)
            kill = first or rng.random() < 0.75
            began = _until_writing(child, out) if kill else None
            done_at = None
            if began is not None:
                delay = rng.uniform(0, statistics.median(windows))  # speeds drift
                while child.poll() is None and time.perf_counter() - began < delay:
                    if done_at is None and _finished(out):
                        done_at = time.perf_counter()
                    time.sleep(POLL_S)
                child.send_signal(signal.SIGKILL)
            code = child.wait(TIMEOUT_S)
            if code == -signal.SIGKILL:
                done += 1
                first = False
                site = kill_site(out)
                where[site] = where.get(site, 0) + 1
                failures += not_whole(out, [want])
                continue
            if code != 0:
                failures.append(f"a rerun exited with status {code}: "
                                f"{log.read_text()[-1500:]}")
            elif first:  # finished before the kill came: a window measured; start over
                if began is not None and done_at is not None:
                    windows.append(done_at - began)
                out.unlink()
                continue
            break
        lost += rows_lost(contents(out), want) if out.exists() else len(want["paths"])
        if out.exists() and differences(contents(out), want):
            failures.append(f"{out} differs: {differences(contents(out), want)}")
        if parts.folder(out).exists():
            failures.append(f"{parts.folder(out)} left after the finished run")
    ledger.add("SIGKILL at random moments (extract)", injected=done,
               recovered=done - len(failures), rows_lost=lost)
    print(f"{done} kills in {cycles} cycles, writing window {statistics.median(windows):.2f} s "
          f"(median of {len(windows)}): {where}")
    assert failures == []
    assert sum(where.values()) == done >= kills


def test_random_sigkills_of_extract(standard: tuple[Path, Path], tmp_path: Path,
                                    ledger) -> None:
    _kill_and_rerun(3, standard, tmp_path, ledger)


@pytest.mark.long
def test_fifty_random_sigkills_of_extract(standard: tuple[Path, Path], tmp_path: Path,
                                          ledger) -> None:
    _kill_and_rerun(50, standard, tmp_path, ledger)
