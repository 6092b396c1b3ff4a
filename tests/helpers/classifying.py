"""`classify` as the tests run it, and the checks its results share."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from classify.cli import main

FAST = ["--jobs", "1", "--grid", "C=0.1,1"]


def run(outputs: Path, *args: str) -> Result:
    """`classify ARGS --outputs OUTPUTS`, in this process."""
    return CliRunner().invoke(main, [*args, "--outputs", str(outputs)])


def assert_one_line_error(result: Result, message: str) -> None:
    """Exit status != 0, the message on the error line, and no traceback anywhere."""
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    error_lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1, result.output
    assert message in error_lines[0], result.output


def only(folder: Path, pattern: str = "*") -> Path:
    """The one entry of `folder` that matches `pattern`."""
    matches = list(folder.glob(pattern))
    assert len(matches) == 1, matches
    return matches[0]
