"""Ctrl-C during `inspect`: one `interrupted:` line, exit 130, and the earlier
inspection's folder as it was."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from classify.inspection import labels
from classify.inspection.cli import main


def test_ctrl_c_keeps_the_earlier_inspection_and_says_nothing_was_written(
        feature_file: Path, outputs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    earlier = outputs / "inspect" / feature_file.stem
    earlier.mkdir(parents=True)
    (earlier / "index.html").write_text("the earlier page")
    long_ago = time.time() - 3600
    os.utime(earlier, (long_ago, long_ago))

    def stopped(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(labels, "check_labels", stopped)
    result = CliRunner().invoke(main, ["--features", str(feature_file), "--outputs",
                                       str(outputs)])
    assert result.exit_code == 130, result.output
    assert result.stderr == "interrupted: nothing was written; run the same command again\n"
    assert [p.name for p in earlier.iterdir()] == ["index.html"]
    assert (earlier / "index.html").read_text() == "the earlier page"
