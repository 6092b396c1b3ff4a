"""Ctrl-C during `classify`: one `interrupted:` line saying what was kept, exit 130,
no click `Aborted!` and no blank line before it (the test's stderr is no terminal)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import classify.experiment
from tests.helpers.classifying import FAST, run


def test_ctrl_c_before_saving_says_nothing_was_written(
        feature_file: Path, outputs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def stopped(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(classify.experiment, "run", stopped)
    result = run(outputs, "--features", str(feature_file), *FAST)
    assert result.exit_code == 130, result.output
    assert result.stderr == "interrupted: nothing was written; run the same command again\n"


def test_ctrl_c_while_saving_names_what_may_be_incomplete(
        feature_file: Path, outputs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def stopped_while_saving(config: Any, **kwargs: Any) -> None:
        (config.outputs / "models" / "toy-logreg").mkdir(parents=True)
        raise KeyboardInterrupt

    monkeypatch.setattr(classify.experiment, "run", stopped_while_saving)
    result = run(outputs, "--features", str(feature_file), *FAST)
    assert result.exit_code == 130, result.output
    assert result.stderr == (f"interrupted: {outputs / 'models' / 'toy-logreg'}/ may be "
                             "incomplete (it was being written); delete it and run the same "
                             "command again\n")
