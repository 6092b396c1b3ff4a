"""`inspect` on inputs it cannot use fully: each gets one line, and nothing is written over."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from classify.inspection.cli import main
from extract.consolidate import FeatureFileWriter
from tests.classify.test_imports import BLOCK_TENSORFLOW, run_python
from tests.helpers.featurefiles import ATTRS, delete_dataset, write_feature_file


def _inspect(outputs: Path, *args: str) -> tuple[int, list[str]]:
    result = CliRunner().invoke(main, [*args, "--outputs", str(outputs)])
    return result.exit_code, result.output.splitlines()


def features_with_a_copy(path: Path, root: Path | None) -> Path:
    """3 classes x 20 rows; row 5 is a copy of row 4 (same features)."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 20)
    X = (rng.normal(scale=4, size=(3, 32))[y] + rng.normal(size=(60, 32))).astype(np.float32)
    X[5] = X[4]
    attrs = {**ATTRS, **({"dataset_root": str(root)} if root else {})}
    writer = FeatureFileWriter(path, feature_dim=32, label_names=["a", "b", "c"], attrs=attrs)
    for i, (row, label) in enumerate(zip(X, y)):
        writer.add(row, int(label), f"{'abc'[label]}/{i:03d}.jpg")
    writer.finish()
    return path


def test_images_moved_since_extraction_get_one_note_and_the_feature_findings(
        outputs: Path, tmp_path: Path) -> None:
    path = features_with_a_copy(outputs / "features" / "moved.h5", tmp_path / "gone")
    code, lines = _inspect(outputs, "--features", str(path))
    assert code == 0, lines
    notes = [line for line in lines if "not found" in line]
    assert notes == [(f"note: 60 of 60 images not found below {tmp_path / 'gone'} (moved since "
                     "extraction?): their thumbnails and content hashes are skipped; the "
                     "findings from the features are kept")]
    findings = json.loads((outputs / "inspect" / "moved" / "findings.json").read_text())
    copies = [f for f in findings["findings"] if f["kind"] == "near_duplicate"]
    assert [f["paths"] for f in copies] == [["a/004.jpg", "a/005.jpg"]]
    page = (outputs / "inspect" / "moved" / "index.html").read_text(encoding="utf-8")
    assert "image not found" in page and "data:image/jpeg" not in page


def test_a_one_class_file_gets_one_note_and_no_label_or_leakage_findings(
        outputs: Path) -> None:
    path = write_feature_file(outputs / "features" / "single.h5", counts=(40,))
    code, lines = _inspect(outputs, "--features", str(path))
    assert code == 0, lines
    assert [line for line in lines if line.startswith("note: one class")] == [
        ("note: one class (class_00): no label errors or leakage to look for; duplicates, "
        "outliers and the map only")]
    counts = json.loads((outputs / "inspect" / "single" / "findings.json").read_text())["counts"]
    assert counts["label_error"] == 0 and counts["leakage"] == 0


def test_a_file_without_paths_is_one_line_and_the_earlier_page_is_kept(outputs: Path) -> None:
    path = write_feature_file(outputs / "features" / "toy.h5")
    assert _inspect(outputs, "--features", str(path))[0] == 0
    page = outputs / "inspect" / "toy" / "index.html"
    before = page.read_bytes()
    delete_dataset(path, "paths")
    code, lines = _inspect(outputs, "--features", str(path))
    assert code == 1
    assert lines == [f"Error: {path}: missing dataset(s) paths"]
    assert page.read_bytes() == before
    assert sorted(p.name for p in (outputs / "inspect").iterdir()) == ["toy"]  # nothing aside


def test_a_file_of_one_image_is_one_line(outputs: Path) -> None:
    path = write_feature_file(outputs / "features" / "one.h5", counts=(1,))
    code, lines = _inspect(outputs, "--features", str(path))
    assert code == 1
    assert lines == [(f"Error: {path}: 1 image(s); inspect compares images, so it needs two or "
                     "more (extract a folder with more images)")]
    assert not (outputs / "inspect").exists()


def test_inspect_runs_with_tensorflow_unimportable(feature_file: Path, outputs: Path) -> None:
    args = ["--features", str(feature_file), "--outputs", str(outputs)]
    done = run_python(BLOCK_TENSORFLOW + textwrap.dedent(f"""
        from classify.inspection.cli import main
        try:
            main({args!r}, prog_name="inspect")
        except SystemExit as exit:
            assert not exit.code, exit.code
        assert not any(m.split(".")[0] in ("tensorflow", "keras") for m in sys.modules)
        """))
    assert done.returncode == 0, done.stderr
    assert (outputs / "inspect" / feature_file.stem / "index.html").is_file()
    assert "inspect/toy-vgg16-avg/index.html" in (outputs / "index.html").read_text()
