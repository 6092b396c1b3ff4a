"""`inspect --cluster`: the neighbour search on Dask finds what it finds in one process."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from classify.inspection.cli import main
from tests.classify.inspection.test_cli_bad_input import features_with_a_copy


def test_the_search_on_dask_finds_the_same_copies(scheduler: str, tmp_path: Path) -> None:
    found = []
    for cluster in ((), ("--cluster", scheduler)):
        outputs = tmp_path / ("dask" if cluster else "here")
        path = features_with_a_copy(tmp_path / f"copies-{len(cluster)}.h5", None)
        result = CliRunner().invoke(main, ["--features", str(path), "--outputs", str(outputs),
                                           *cluster])
        assert result.exit_code == 0, result.output
        findings = json.loads(next(outputs.glob("inspect/*/findings.json")).read_text())
        found.append([(f["kind"], f["paths"]) for f in findings["findings"]])
    assert found[0] == found[1]
    assert ("near_duplicate", ["a/004.jpg", "a/005.jpg"]) in found[0]
