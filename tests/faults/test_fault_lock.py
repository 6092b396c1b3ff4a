"""The writer lock and the decisions taken under it, where the filesystem misbehaves.

- flock unsupported (some network filesystems): filelock falls back to its soft lock;
  extract still works, still refuses a second writer, and takes over the lock of a
  writer that was killed.
- A transient read error (EIO) on the complete file never makes it count as stale:
  the run stops with one line, the file is untouched, and the next run reuses it.
- No lock file stays beside a finished feature file, whatever the run did.
"""

from __future__ import annotations

import errno
import fcntl
import shutil
import subprocess
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import h5py
import pytest

from extract import extraction, parts
from tests.helpers.faultkit import (
    assert_one_error_line,
    assert_same_file,
    extract_args,
    extract_here,
    snapshot,
)
from tests.helpers.synthetic import OPTIONS, add_images, extract_once

HOLD_AND_DIE = """
import errno, fcntl, os, signal, sys
from pathlib import Path
def unsupported(*args): raise OSError(errno.ENOSYS, "Function not implemented")
fcntl.flock = unsupported
from extract import extraction
held = extraction.locked(Path(sys.argv[1]))
held.__enter__()
os.kill(os.getpid(), signal.SIGKILL)
"""


def _no_flock(*args: object) -> None:
    raise OSError(errno.ENOSYS, "Function not implemented")


def test_extract_without_flock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               ledger) -> None:
    root = add_images(tmp_path / "images", 0, 10)
    reference = tmp_path / "reference.h5"
    extract_once(root, reference)
    out = tmp_path / "out" / "features.h5"
    # A writer that held the soft lock was killed: its lock file stays behind.
    held = subprocess.run([sys.executable, "-c", HOLD_AND_DIE, str(out)], check=False,
                          capture_output=True, text=True)
    assert held.returncode == -9, held.stderr
    assert (parts.folder(out) / ".lock").exists()

    monkeypatch.setattr(fcntl, "flock", _no_flock)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with extraction.locked(out), pytest.raises(extraction.OutputLockedError,
                                               match="another extract is writing this file"):
            extract_once(root, out)  # a second writer, while this one holds it
        outcome = extract_once(root, out)
    assert any("falling back to SoftFileLock" in str(w.message) for w in caught)
    ledger.record("flock unsupported (soft lock)", recovered=outcome.action == "created")
    assert outcome.action == "created"
    assert_same_file(out, reference)
    assert sorted(p.name for p in out.parent.iterdir()) == ["features.h5"]


def test_no_lock_file_beside_a_finished_file(tmp_path: Path) -> None:
    """Created, reused, updated, forced: each leaves the feature file alone in its folder."""
    root = add_images(tmp_path / "images", 0, 10)
    out = tmp_path / "out" / "features.h5"
    actions = [extract_once(root, out).action, extract_once(root, out).action]
    add_images(root, 10, 12)
    actions.append(extract_once(root, out).action)
    actions.append(extract_once(root, out, options=replace(OPTIONS, force=True)).action)
    assert actions == ["created", "reused", "updated", "created"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["features.h5"]


# which open of the complete file fails -> words of the one error line
OPENS = {
    "reading its settings": (1, ("not a readable HDF5 feature file", "Input/output error",
                                 "it is left as it is")),
    "reading its rows for an update": (2, ("Input/output error",)),
}


@pytest.mark.parametrize("which", OPENS)
def test_read_error_never_makes_a_complete_file_stale(
    which: str, standard: tuple[Path, Path], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, ledger
) -> None:
    failing, words = OPENS[which]
    root = tmp_path / "data"
    shutil.copytree(standard[0], root)
    out = tmp_path / "out" / "features.h5"
    args = extract_args(root, out)
    assert extract_here(args).exit_code == 0
    if failing == 2:  # an added image: the run reads the old file's rows to reuse them
        shutil.copy2(root / "class_0" / "img_000.jpg", root / "class_0" / "img_000 copy.jpg")
    before = snapshot(out.parent)
    real_open = h5py.File
    opens = 0

    def flaky(name: object, mode: str = "r", *a: object, **k: object) -> h5py.File:
        nonlocal opens
        if Path(str(name)) == out:
            opens += 1
            if opens == failing:
                raise OSError(errno.EIO, "Input/output error", str(out))
        return real_open(name, mode, *a, **k)

    with monkeypatch.context() as patch:
        patch.setattr(h5py, "File", flaky)
        failed = extract_here(args)
    assert failed.exit_code == 1, failed.output
    assert_one_error_line(failed.stderr, str(out), *words)
    assert snapshot(out.parent) == before  # not replaced, not touched, no parts left

    again = extract_here(args)
    ledger.record(f"EIO {which}", recovered=again.exit_code == 0)
    assert again.exit_code == 0, again.output
    assert ("reusing" if failing == 1 else "updated: 25 rows") in again.output
