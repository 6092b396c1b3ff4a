"""The disk filling up in the middle of a part.

Two ways: RLIMIT_FSIZE in the child (SIGXFSZ ignored), so a write past the limit fails
with EFBIG as it would with ENOSPC, on any machine; and, where this user may mount
one in a private mount namespace, a real small tmpfs that runs out of space (ENOSPC).

An update is under way (images were added, so the older complete file is read for
its rows): the error is one line naming the file, the earlier part and the older
file are untouched, and a rerun with room resumes and ends with the right rows.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from extract import parts
from tests.helpers.faultkit import (
    UPDATE_ATTRS,
    assert_one_error_line,
    assert_same_file,
    extract_args,
    extract_here,
    rerun_and_record,
    run_extract,
    snapshot,
)
from tests.helpers.imagefolders import class_image

# At 64 px a row is 8 KB and a chunk 5 rows (40 KB). The 11 added images and the
# unreadable one (never a row, so computed again) make shards of 4 and 8 images: parts
# of about 50 and 95 KB, so the second part's second chunk does not fit.
SIZE = 64
LIMIT = 70_000


@pytest.fixture(scope="module")
def updating(standard: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A folder's complete file, then 11 images added; the file a clean run writes."""
    source, _ = standard
    base = tmp_path_factory.mktemp("disk")
    root = base / "data"
    shutil.copytree(source, root)
    old = base / "old.h5"
    assert extract_here(extract_args(root, old, size=SIZE)).exit_code == 0
    for index in range(6):
        class_image(0, 20 + index).save(root / "class_0" / f"new_{index}.jpg")
        if index < 5:
            class_image(2, 20 + index).save(root / "class_2" / f"new_{index}.jpg")
    clean = base / "clean.h5"
    assert extract_here(extract_args(root, clean, size=SIZE)).exit_code == 0
    return {"root": root, "old": old, "clean": clean}


def _file_size_limit(nbytes: int):
    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))

    return limit


# where the limit falls -> (limit, the message's words, parts kept, images the rerun computes)
WHERE = {
    "in the second part": (LIMIT, ("cannot write (File too large)", ".parts/",
                                   "make room, then run the same command again to resume"),
                           1, 8),
    # Both parts (50 and 95 KB) fit; the new file (about 300 KB) does not.
    "in the new file": (150_000, ("features.h5.tmp: cannot write (File too large)",
                                  "features.h5 is as it was",
                                  "make room, then run the same command again"), 2, 0),
}


@pytest.mark.parametrize("where", WHERE)
def test_file_size_limit(where: str, updating: dict, tmp_path: Path, ledger) -> None:
    """One line naming the file; the older complete file and the finished parts untouched;
    the rerun resumes from those parts."""
    limit, words, kept, computed = WHERE[where]
    out = tmp_path / "features.h5"
    shutil.copy2(updating["old"], out)
    args = extract_args(updating["root"], out, size=SIZE)
    before = snapshot(tmp_path)
    full = run_extract(args, preexec_fn=_file_size_limit(limit))
    assert full.returncode == 1, full.stderr[-2000:]
    assert_one_error_line(full.stderr, *words)
    after = snapshot(tmp_path)
    assert after["features.h5"] == before["features.h5"]  # the older complete file
    finished = [name for name in after if name.endswith(".h5") and ".parts/" in name]
    assert len(finished) == kept, after
    assert not [name for name in after if name.endswith(".tmp")], after

    rerun = rerun_and_record(args, out, updating["clean"], ledger,
                             f"file size limit {where} (EFBIG)")
    assert rerun.exit_code == 0, rerun.output
    assert f"resuming: {kept} of 2 shards are already in {parts.folder(out)}/" in rerun.output
    counts = re.search(r"; (\d+) computed, (\d+) from the interrupted run's parts, 24 reused;",
                       rerun.output)
    assert counts and int(counts.group(1)) == computed and int(counts.group(2)) > 0, rerun.output
    assert_same_file(out, updating["clean"], may_differ=UPDATE_ATTRS)


SCRIPT = """
set -e
mount -t tmpfs -o size={size} tmpfs "$1"
cp -p "$2" "$1/features.h5"
shift 2
"$@" && echo "exit 0" || echo "exit $?"
cp -rp "$MNT/." "$SAVE/"
"""


def test_real_enospc_on_a_small_tmpfs(updating: dict, tmp_path: Path, ledger) -> None:
    """The older file and the first part fit, the second part does not."""
    if not shutil.which("unshare"):
        pytest.skip("no unshare: cannot mount a private tmpfs")
    probe = subprocess.run(["unshare", "--mount", "--map-root-user", "sh", "-c",
                            f"mount -t tmpfs -o size=64k tmpfs {tmp_path}"],
                           capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({probe.stderr.strip()})")
    mnt, save = tmp_path / "mnt", tmp_path / "save"
    mnt.mkdir()
    save.mkdir()
    out = mnt / "features.h5"
    size = updating["old"].stat().st_size + LIMIT
    script = tmp_path / "full.sh"
    script.write_text(SCRIPT.format(size=size))
    args = extract_args(updating["root"], out, size=SIZE)
    full = subprocess.run(["unshare", "--mount", "--map-root-user", "--propagation",
                           "private", "sh", str(script), str(mnt), str(updating["old"]),
                           sys.executable, "-m", "extract", *args],
                          capture_output=True, text=True, check=False, timeout=240,
                          env={**os.environ, "MNT": str(mnt), "SAVE": str(save)})
    assert "exit 1" in full.stdout, full.stdout + full.stderr[-2000:]
    # What the mount held when extract stopped, copied out before it went away.
    left = snapshot(save)
    assert_same_file(save / "features.h5", updating["old"])  # the older file, untouched
    assert_one_error_line(full.stderr, f"{parts.folder(out)}/",
                          "cannot write (No space left on device)",
                          "make room, then run the same command again to resume")
    kept = [name for name in left if name.endswith(".h5") and ".parts/" in name]
    assert len(kept) == 1 and not [n for n in left if n.endswith(".tmp")], left
    ledger.record("disk full in a part (ENOSPC, tmpfs)", recovered=True)
