"""A SIGKILL, and separately a Ctrl-C, before every line of the feature writer.

The CLI-level tests hit the moments that matter by name; these hit all of them. After
each fault: the file is never accepted as complete unless it is, and the next run
(reuse, resume or restart, as the runner decides) ends with the uninterrupted file.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from faultkit import TIMEOUT_S, assert_same_file, contents, rows_lost
from writer_points import Point, armed, next_run, points, two_sittings, write_reference

from extract import store

POINTS = points()
INTERRUPTIBLE = [p for p in POINTS if p.interruptible]
CHILD = Path(__file__).with_name("writer_child.py")


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("writer_reference") / "reference.h5"
    write_reference(path)
    return path


@pytest.fixture(scope="module")
def killed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """One child forks once per point and SIGKILLs itself there."""
    folder = tmp_path_factory.mktemp("writer_killed")
    done = subprocess.run([sys.executable, str(CHILD), str(folder)], check=False,
                          capture_output=True, text=True, timeout=TIMEOUT_S, cwd=CHILD.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    return folder, json.loads(done.stdout)


def _recover(path: Path, reference: Path, fault: str, ledger) -> None:
    accepted = 0
    try:
        early = store.read_features(path)
        # Accepted as complete: only right if it really is the whole file.
        accepted = int(contents(path)["paths"].tolist() != contents(reference)["paths"].tolist()
                       or not (early.X == store.read_features(reference).X).all())
    except store.FeatureFileError:
        pass
    next_run(path)
    lost = rows_lost(path, reference)
    ledger.record(fault, recovered=lost == 0, rows_lost=lost, partial_accepted=accepted)
    assert accepted == 0
    assert_same_file(path, reference)


def test_every_point_is_a_real_line() -> None:
    assert len(POINTS) > 60
    assert {p.method for p in POINTS} >= {"create", "resume", "add", "skip", "flush",
                                         "_reserve", "finish", "close", "__exit__"}


@pytest.mark.parametrize("point", POINTS, ids=[p.id for p in POINTS])
def test_sigkill_before_writer_line(
    point: Point, killed: tuple[Path, dict[str, str]], reference: Path, ledger
) -> None:
    folder, outcomes = killed
    assert outcomes[point.id] == "killed"
    _recover(folder / f"{point.id}.h5", reference, "SIGKILL at every writer line", ledger)


@pytest.mark.parametrize("point", INTERRUPTIBLE, ids=[p.id for p in INTERRUPTIBLE])
def test_ctrl_c_before_writer_line(point: Point, tmp_path: Path, reference: Path, ledger) -> None:
    path = tmp_path / "features.h5"
    with pytest.raises(KeyboardInterrupt), armed(point, signal.SIGINT):
        two_sittings(path)
    _recover(path, reference, "SIGINT at every writer line", ledger)
