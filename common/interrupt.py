"""Ctrl-C in every command: one line saying what was kept, and exit status 130.

130 is what a shell reports for a command stopped by SIGINT (128 + 2), so a script tells
an interrupted run from a failed one (1) or a usage error (2). What a command wrote is
told by the modification times of its outputs against this module's import, which each
command does at start-up, before any work.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import NoReturn

EXIT_STATUS = 130
STARTED = time.time()  # the command's start, near enough: what is newer, it wrote
AGAIN = "run the same command again"


def exit_interrupted(kept: str) -> NoReturn:
    """Print `interrupted: <kept>` on stderr and exit with status 130."""
    if sys.stderr.isatty():  # end the line the terminal echoed ^C on; a log gets no blank
        sys.stderr.write("\n")
    sys.stderr.write(f"interrupted: {kept}\n")
    sys.stderr.flush()
    sys.exit(EXIT_STATUS)


def is_new(path: Path) -> bool:
    """Whether `path` exists and was made or changed since the command started."""
    try:
        return path.stat().st_mtime >= STARTED
    except OSError:
        return False


def written_since_start(folders: Iterable[Path]) -> list[Path]:
    """The entries of `folders` (absent ones have none) made or changed since the start."""
    return [entry for folder in folders if folder.is_dir()
            for entry in sorted(folder.iterdir()) if is_new(entry)]


def unsaved_note(folders: Iterable[Path]) -> str:
    """What a command that saves into `folders` only at its end kept when stopped: nothing,
    or the entries it was writing, which may be incomplete."""
    new = written_since_start(folders)
    if not new:
        return f"nothing was written; {AGAIN}"
    named = [f"{path}/" if path.is_dir() else str(path) for path in new]
    listed = named[0] if len(named) == 1 else f"{', '.join(named[:-1])} and {named[-1]}"
    it, was = ("it", "it was") if len(named) == 1 else ("them", "they were")
    return f"{listed} may be incomplete ({was} being written); delete {it} and {AGAIN}"
