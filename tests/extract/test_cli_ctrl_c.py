"""Ctrl-C during `extract`: its `interrupted:` line is the first thing it writes to a
stderr that is no terminal (no blank line before it), and it exits 130."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import extract.extraction
from extract.cli import main
from tests.helpers.imagefolders import make_folder


def test_ctrl_c_gives_one_line_and_no_blank_one_before_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_folder(tmp_path / "photos", classes=2, per_class=2)

    def stopped(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(extract.extraction, "run", stopped)
    result = CliRunner().invoke(main, ["--dataset", str(root), "--backbone", "vgg16",
                                       "--weights", "random", "--image-size", "32",
                                       "--output", str(tmp_path / "f.h5")])
    assert result.exit_code == 130, result.output
    assert result.stderr == ("interrupted: no shard was finished yet; run the same command "
                             "again\n")
