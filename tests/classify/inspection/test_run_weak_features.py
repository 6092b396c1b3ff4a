"""Features that separate the classes poorly get one warning, printed and at the top of
the page: the label errors and near-duplicates found in them are unreliable."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from classify.inspection.cli import main
from tests.helpers.featurefiles import write_feature_file

WARNING = re.compile(r"warning: these features separate the classes poorly \(out-of-fold "
                     r"balanced accuracy 0\.\d\d, chance 0\.25; usable features reach 0\.80\)")


def _inspect(outputs: Path, features: Path) -> tuple[list[str], str, dict]:
    result = CliRunner().invoke(main, ["--features", str(features), "--outputs", str(outputs)])
    assert result.exit_code == 0, result.output
    folder = outputs / "inspect" / features.stem
    page = (folder / "index.html").read_text(encoding="utf-8")
    return (result.output.splitlines(), page,
            json.loads((folder / "findings.json").read_text(encoding="utf-8")))


def test_weak_features_get_one_warning_printed_and_atop_the_page(outputs: Path) -> None:
    weak = write_feature_file(outputs / "features" / "weak-vgg16-avg.h5", spread=0.3)
    lines, page, findings = _inspect(outputs, weak)
    warnings = [line for line in lines if line.startswith("warning: ")]
    assert len(warnings) == 1 and WARNING.match(warnings[0]), lines
    assert warnings[0].endswith(": the findings are unreliable (most likely label errors are "
                                "the model's mistakes; near-duplicates and outliers rest on "
                                "the same features); try another --backbone")
    assert findings["warnings"] == warnings
    assert page.index("separate the classes poorly") < page.index("<table>")


def test_features_that_separate_the_classes_get_no_warning(feature_file: Path,
                                                           outputs: Path) -> None:
    lines, page, findings = _inspect(outputs, feature_file)
    assert not [line for line in lines if line.startswith("warning: ")], lines
    assert findings["warnings"] == []
    assert "separate the classes poorly" not in page
