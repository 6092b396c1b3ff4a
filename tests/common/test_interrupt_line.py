"""Ctrl-C's one line: `interrupted: <what was kept>` on stderr, exit status 130, a
blank line before it only on a terminal (where it ends the line of the ^C echo)."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest

from common import interrupt


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("stream", "printed"), [
    (io.StringIO(), "interrupted: nothing was written\n"),
    (_Terminal(), "\ninterrupted: nothing was written\n"),
])
def test_one_line_and_exit_130_with_a_blank_line_only_on_a_terminal(
        monkeypatch: pytest.MonkeyPatch, stream: io.StringIO, printed: str) -> None:
    monkeypatch.setattr("sys.stderr", stream)
    with pytest.raises(SystemExit) as stopped:
        interrupt.exit_interrupted("nothing was written")
    assert stopped.value.code == 130
    assert stream.getvalue() == printed


def test_what_the_command_wrote_is_named_and_the_rest_is_left_out(tmp_path: Path) -> None:
    reports, models = tmp_path / "reports", tmp_path / "models"
    (reports / "earlier").mkdir(parents=True)
    (models / "earlier").mkdir(parents=True)
    long_ago = time.time() - 3600
    for folder in (reports / "earlier", models / "earlier"):
        os.utime(folder, (long_ago, long_ago))
    assert interrupt.unsaved_note([reports, models, tmp_path / "absent"]) == \
        "nothing was written; run the same command again"
    (models / "run").mkdir()
    assert interrupt.unsaved_note([reports, models]) == (
        f"{models / 'run'}/ may be incomplete (it was being written); delete it and run the "
        "same command again")
    (reports / "run").mkdir()
    assert interrupt.unsaved_note([reports, models]) == (
        f"{reports / 'run'}/ and {models / 'run'}/ may be incomplete (they were being "
        "written); delete them and run the same command again")
