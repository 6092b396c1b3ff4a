"""A machine or a command line that cannot work: a read-only outputs folder, an outputs
path that is a file, a named dataset that is neither there nor downloadable, an unknown
backbone, a batch size of zero or less. Each is one `Error:` line, nothing written."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from extract import parts
from tests.helpers.faultkit import assert_one_error_line, extract_args, extract_here, run_extract


def _writable(folder: Path) -> bool:
    probe = folder / ".probe"
    try:
        probe.touch()
    except OSError:
        return False
    probe.unlink()
    return True


@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """Make `folder` read-only for real: chmod, and for root (whom chmod does not stop)
    the immutable attribute too; skip only when neither stops a write."""
    folder.chmod(0o555)
    immutable = False
    try:
        if _writable(folder) and shutil.which("chattr"):
            immutable = subprocess.run(["chattr", "+i", str(folder)], check=False,
                                       capture_output=True).returncode == 0
        if _writable(folder):
            pytest.skip("root without chattr +i: nothing here makes a folder read-only")
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)


def test_read_only_outputs_folder(standard: tuple[Path, Path], tmp_path: Path, ledger) -> None:
    root, _ = standard
    features = tmp_path / "outputs" / "features"
    features.mkdir(parents=True)
    out = features / "f.h5"
    with read_only(features):
        result = extract_here(extract_args(root, out))
    ledger.record("read-only outputs folder", recovered=result.exit_code == 1)
    assert result.exit_code == 1, result.output
    line = assert_one_error_line(result.stderr, str(parts.folder(out)))
    assert line.endswith(("Permission denied", "Operation not permitted")), line
    assert os.listdir(features) == []


def test_outputs_path_is_a_file(standard: tuple[Path, Path], tmp_path: Path, ledger) -> None:
    root, _ = standard
    (tmp_path / "outputs").write_text("not a folder")
    result = extract_here(extract_args(root, tmp_path / "outputs" / "features" / "f.h5"))
    ledger.record("outputs is a file", recovered=result.exit_code == 1)
    assert result.exit_code == 1, result.output
    out = tmp_path / "outputs" / "features" / "f.h5"
    assert_one_error_line(result.stderr, f"{parts.folder(out)}: Not a directory")
    assert (tmp_path / "outputs").read_text() == "not a folder"


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["--dataset", "animals"], 1,
         ("Error: dataset 'animals' not found at {datasets}/animals: it has no public "
          "archive; put your images in {datasets}/animals/cats/")),
        (["--backbone", "alexnet"], 2,  # issue 26: a usage error, like a misspelt --model
         ("Error: Invalid value for '--backbone': unknown backbone 'alexnet'; choose one "
          "of: vgg16")),
        (["--batch-size", "0"], 2,
         "Error: Invalid value for '--batch-size': must be a positive number, got 0"),
        (["--batch-size", "-3"], 2,
         "Error: Invalid value for '--batch-size': must be a positive number, got -3"),
    ],
    ids=["animals missing", "unknown backbone", "batch size 0", "batch size -3"],
)
def test_impossible_command_is_one_error_line(
    args: list[str], status: int, message: str, standard: tuple[Path, Path], tmp_path: Path,
    ledger,
) -> None:
    """In a real child: the whole stderr is click's usage lines at most and one error."""
    root, _ = standard
    datasets = tmp_path / "datasets"  # does not exist
    out = tmp_path / "f.h5"
    base = ["--dataset", str(root), "--weights", "random", "--output", str(out),
            "--datasets-dir", str(datasets)]
    result = run_extract([*base, *args], cwd=tmp_path)
    ledger.record(f"bad command: {args[0]} {args[1]}", recovered=result.returncode == status)
    assert result.returncode == status, result.stderr
    error = assert_one_error_line(result.stderr, message.format(datasets=datasets))
    rest = [line for line in result.stderr.splitlines()
            if line and not line.startswith(("Usage:", "Try '"))]
    assert rest == [error]
    assert result.stdout == ""
    assert not out.exists() and not (tmp_path / "outputs").exists()
