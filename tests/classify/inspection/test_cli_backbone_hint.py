"""Finding 13c of the second new-user pass (inspect): the hint after a misspelt backbone
does not repeat the typo."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from classify.inspection.cli import main


def test_the_backbone_hint_does_not_repeat_the_typo(feature_file: Path, outputs: Path) -> None:
    result = CliRunner().invoke(main, ["--dataset", "toy", "--backbone", "vgg61",
                                       "--outputs", str(outputs)])
    assert result.exit_code == 2, result.output
    assert "did you mean vgg16? the files have vgg16" in result.output
    assert "extract --backbone NAME makes one" in result.output
    assert "vgg61 makes" not in result.output
