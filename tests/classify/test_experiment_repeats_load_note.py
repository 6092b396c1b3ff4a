"""Finding 13g of the second new-user pass: --repeats says `loaded ...` once, not once
per draw."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.classifying import run
from tests.helpers.featurefiles import write_feature_file


def test_repeats_announce_the_load_once(tmp_path: Path) -> None:
    path = write_feature_file(tmp_path / "f.h5", counts=[10, 10, 10], dims=4)
    result = run(tmp_path / "outputs", "--features", str(path), "--jobs", "1",
                 "--train-per-class", "4", "--repeats", "3")
    assert result.exit_code == 0, result.output
    assert [line for line in result.output.splitlines() if line.startswith("draw ")] == [
        "draw 1 of 3 (seed 42)", "draw 2 of 3 (seed 43)", "draw 3 of 3 (seed 44)"]
    assert sum(line.startswith("loaded ") for line in result.output.splitlines()) == 1
