"""SIGKILL at uniformly random moments of the real writers; prints a JSON summary.

    python kill_writer_child.py WORKDIR KILLS SEED

A fresh interpreter without TensorFlow and without threads (the caller sets
OPENBLAS_NUM_THREADS=1), so forking is safe and each kill costs milliseconds. Every
attempt is a forked child running the real `extraction.run`: its lock, its reuse, resume
and update decisions, `PartWriter` parts published by rename, consolidation into the
file written aside, removal of the parts. Only the rows are synthetic: a distributor
writes 25,088-wide rows (VGG16's flatten) in 1 MB blocks instead of running a model.

Each kill lands at a moment drawn uniformly from an uninterrupted run's duration, so
it falls inside HDF5's own writes, fsyncs and renames as often as their share of the
time. The same command then runs again (and is itself killed half of the time) until
one run finishes; that file must equal an uninterrupted run's, bit for bit. After every
kill, whatever sits under a final name (the feature file, a part) must be whole.

Two phases: creating the file from nothing, then updating it after images were added
(the rows of the unchanged images copied from the previous complete file).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

# Run as a script: the repository root makes tests.helpers importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from extract import parts
from tests.helpers.faultkit import contents, differences, kill_site, not_whole, rows_lost
from tests.helpers.synthetic import add_images, extract_once


def fork_run(root: Path, output: Path) -> int:
    # A thread in this process could hold a lock at the fork, and the child would wait
    # on it for ever; so nothing runs the engine here (tqdm starts a monitor thread).
    assert len(os.listdir("/proc/self/task")) == 1, "a thread in the forking process"
    pid = os.fork()
    if pid == 0:
        signal.alarm(20)  # a child that hangs must not outlive the test
        try:
            extract_once(root, output)
            os._exit(0)
        except BaseException:  # noqa: BLE001 - any escape is reported, then exit 3
            traceback.print_exc()
            os._exit(3)
    return pid


def wait(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


class Tally:
    def __init__(self) -> None:
        self.kills = 0
        self.cycles = 0
        self.reruns = 0
        self.rerun_failures: list[str] = []
        self.rows_lost = 0
        self.partial_accepted = 0
        self.where: dict[str, int] = {}
        self.fraction: list[float] = []


def reset(output: Path, old: Path | None) -> None:
    """The state before the command: no parts, and the previous file if updating."""
    shutil.rmtree(parts.folder(output), ignore_errors=True)
    output.unlink(missing_ok=True)
    if old is not None:
        shutil.copy2(old, output)


def cycle(root: Path, output: Path, reference: dict[str, Any], old: Path | None,
          duration: float, rng: random.Random, tally: Tally) -> None:
    """Kill a run, then run the same command (killed half of the time) until one
    finishes; check the file it leaves."""
    reset(output, old)
    allowed = [reference] + ([contents(old)] if old is not None else [])
    tally.cycles += 1
    first = True
    while True:
        kill = first or rng.random() < 0.5
        pid = fork_run(root, output)
        if kill:
            fraction = rng.random()
            time.sleep(fraction * duration)
            os.kill(pid, signal.SIGKILL)
        code = wait(pid)
        if code == -signal.SIGKILL:
            tally.kills += 1
            if tally.kills % 50 == 0:  # shown if the test fails or times out
                print(f"{tally.kills} kills, {time.perf_counter() - STARTED:.0f} s",
                      file=sys.stderr, flush=True)
            tally.fraction.append(fraction)
            site = kill_site(output)
            tally.where[site] = tally.where.get(site, 0) + 1
            faults = not_whole(output, allowed)
            tally.partial_accepted += len(faults)
            tally.rerun_failures += faults
            tally.reruns += 1  # the same command runs next
            first = False
            continue
        if code != 0:
            tally.rerun_failures.append(f"a run exited with status {code}")
            tally.rows_lost += len(reference["paths"])
            return
        if first:  # it finished before the kill came: not a kill, start the cycle over
            reset(output, old)
            continue
        break
    got = contents(output)
    lost = rows_lost(got, reference)
    tally.rows_lost += lost
    if differences(got, reference):
        tally.rerun_failures.append(f"final file differs from the uninterrupted run's "
                                    f"({lost} rows lost)")
    if parts.folder(output).exists() or output.with_name(output.name + ".tmp").exists():
        left = sorted(p.name for p in parts.folder(output).glob("*"))
        tally.rerun_failures.append(f"left after a finished run: {left}")


def uninterrupted(root: Path, output: Path, old: Path | None) -> float:
    """Run to the end (from `old` when updating); the median of three wall times."""
    times = []
    for _ in range(3):
        reset(output, old)
        started = time.perf_counter()
        code = wait(fork_run(root, output))
        times.append(time.perf_counter() - started)
        assert code == 0, f"the uninterrupted run exited with status {code}"
    return sorted(times)[1]


STARTED = time.perf_counter()


def main() -> None:
    work, kills, seed = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    assert "tensorflow" not in sys.modules
    rng = random.Random(seed)
    root = add_images(work / "images", 0, 15)
    tally = Tally()
    durations = {}

    # Phase A: from nothing. Phase B: 5 images per class added, the rest reused.
    ref_a = work / "reference_a.h5"
    durations["create"] = uninterrupted(root, ref_a, None)
    want_a = contents(ref_a)
    out = work / "features.h5"
    while tally.kills < kills * 2 // 3:
        cycle(root, out, want_a, None, durations["create"], rng, tally)

    add_images(root, 15, 20)
    ref_b = work / "reference_b.h5"
    durations["update"] = uninterrupted(root, ref_b, ref_a)
    want_b = contents(ref_b)
    fresh = work / "fresh_b.h5"
    assert wait(fork_run(root, fresh)) == 0
    while tally.kills < kills:
        cycle(root, out, want_b, ref_a, durations["update"], rng, tally)

    print(json.dumps({
        "kills": tally.kills, "cycles": tally.cycles, "reruns": tally.reruns,
        "rerun_failures": tally.rerun_failures, "rows_lost": tally.rows_lost,
        "partial_accepted": tally.partial_accepted, "where": tally.where,
        "durations": durations, "fractions": tally.fraction,
        "rows": [len(want_a["paths"]), len(want_b["paths"])],
        "reused": [want_a["attrs"]["n_reused"], want_b["attrs"]["n_reused"]],
        # The incremental file holds what one made from nothing does.
        "update_differs_from_fresh": differences(contents(fresh), want_b),
    }))


if __name__ == "__main__":
    main()
