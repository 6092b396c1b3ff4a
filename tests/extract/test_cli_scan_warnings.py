"""A folder that fails the scan still shows the scan's warnings, which often say why, and
the command ends on its error line (nothing after it)."""

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers.imagefolders import make_folder

ROOT = Path(__file__).resolve().parents[2]


def test_an_empty_class_folder_is_named_before_the_one_class_error(tmp_path):
    root = make_folder(tmp_path / "photos", classes=1, per_class=3)
    (root / "tulip").mkdir()
    env = {key: value for key, value in os.environ.items()
           if key not in ("OFFTHESHELF_NATIVE_LOGS", "PYTHONWARNINGS")}
    # A process of its own: the stderr filter (common.quiet) is installed as for a user.
    done = subprocess.run(
        [sys.executable, "-m", "extract.cli", "--dataset", str(root), "--output",
         str(tmp_path / "f.h5")],
        cwd=ROOT, env={**env, "XDG_CACHE_HOME": str(tmp_path / "cache")},
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 1, done.stderr
    warning, error, *after = done.stderr.splitlines()
    assert warning == f"warning: class folder {root / 'tulip'} holds no images; ignored"
    assert error.startswith("Error: ") and "found 1 class folder (class_0/)" in error
    assert after == []  # no ResourceWarning from the stderr filter's stream at exit
