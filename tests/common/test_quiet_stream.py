"""The stderr filter (common.quiet) closes the stream it writes through at exit."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_no_unclosed_stream_is_left_at_exit():
    env = {key: value for key, value in os.environ.items() if key != "OFFTHESHELF_NATIVE_LOGS"}
    # Python's development mode shows every ResourceWarning, as a warnings filter may.
    done = subprocess.run([sys.executable, "-X", "dev", "-m", "extract.cli", "--list-backbones"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert "ResourceWarning" not in done.stderr, done.stderr
