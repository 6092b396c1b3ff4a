"""Feature fusion: several files of the same images read as one (rows aligned by path),
the one-line refusals and classify's fused runs (predict rebuilding every extractor is
tested in tests/predict/test_predicting.py)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from classify import fusion
from classify.bundles import load_bundle
from classify.cli import main as classify_main
from extract.consolidate import FeatureFileWriter
from extract.featurefile import read_features
from tests.helpers.featurefiles import ATTRS

NAMES = ["class_0", "class_1", "class_2", "class_3"]
PER_CLASS = 40


def halves(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Class c = 2a + b: the first block of columns says only a, the second only b, so
    each block alone tells half the classes apart and only the two together all four."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(4), PER_CLASS)
    a, b = y // 2, y % 2
    centres = rng.normal(scale=3.0, size=(2, 8))
    first = (centres[a] + rng.normal(size=(len(y), 8))).astype(np.float32)
    second = (centres[b][:, ::-1] + rng.normal(size=(len(y), 8))).astype(np.float32)
    paths = [f"{NAMES[label]}/{i:04d}.jpg" for i, label in enumerate(y)]
    return first, second, y, paths


def write(path: Path, X: np.ndarray, y: np.ndarray, paths: list[str], *,
          names: list[str] = NAMES, order: np.ndarray | None = None, **attrs) -> Path:
    """A complete feature file with its rows in `order` (default: as given)."""
    order = np.arange(len(y)) if order is None else order
    writer = FeatureFileWriter(path, feature_dim=X.shape[1], label_names=names,
                               attrs={**ATTRS, **attrs}, buffer_size=64)
    for i in order:
        writer.add(X[i], int(y[i]), paths[i])
    writer.finish()
    return path


@pytest.fixture
def pair(outputs: Path) -> tuple[Path, Path]:
    """toy-vgg16-avg.h5 and toy-resnet50-avg.h5 (rows shuffled) of the same 160 images."""
    first, second, y, paths = halves()
    folder = outputs / "features"
    a = write(folder / "toy-vgg16-avg.h5", first, y, paths)
    shuffled = np.random.default_rng(1).permutation(len(y))
    b = write(folder / "toy-resnet50-avg.h5", second, y, paths,
              order=shuffled, backbone="resnet50", input_size=160)
    return a, b


# -- read_fused ---------------------------------------------------------------------------


def test_one_file_reads_as_read_features(pair) -> None:
    a, _ = pair
    fused, plain = fusion.read_fused([a]), read_features(a)
    np.testing.assert_array_equal(fused.X, plain.X)
    assert fused.attrs == plain.attrs
    assert fusion.extractors(fused.attrs) == [plain.attrs]


def test_shuffled_rows_are_aligned_by_path_and_concatenated_in_order(pair) -> None:
    a, b = pair
    first, second, y, paths = halves()
    fused = fusion.read_fused([a, b])
    assert fused.paths == paths
    np.testing.assert_array_equal(fused.y, y)
    np.testing.assert_array_equal(fused.X, np.hstack([first, second]))
    reverse = fusion.read_fused([b, a])  # the first file's row order, the named column order
    order = [reverse.paths.index(p) for p in paths]
    np.testing.assert_array_equal(reverse.X[order], np.hstack([second, first]))
    assert fused.attrs["backbone"] == "vgg16+resnet50"
    assert fused.attrs["input_size"] == "224+160"
    assert fused.attrs["feature_dim"] == 16
    assert fused.attrs["files"] == [str(a), str(b)]
    assert [e["backbone"] for e in fusion.extractors(fused.attrs)] == ["vgg16", "resnet50"]


def _refusal(tmp: Path, case: str) -> tuple[list[Path], str]:
    first, second, y, paths = halves()
    a = write(tmp / "a.h5", first, y, paths)
    if case == "same file twice":
        return [a, tmp / "." / "a.h5"], "a.h5: named twice"
    if case == "other classes":
        names = ["class_0", "class_1", "class_9", "class_3"]
        b = write(tmp / "b.h5", second, y, paths, names=names)
        return [a, b], "b.h5: class 3 is 'class_9' where"
    if case == "fewer classes":
        keep = y < 3
        b = write(tmp / "b.h5", second[keep], y[keep], [p for p, k in zip(paths, keep) if k],
                  names=NAMES[:3])
        return [a, b], f"b.h5: different classes (3 vs 4 in {a}; missing here: 'class_3')"
    if case == "missing image":
        b = write(tmp / "b.h5", second[1:], y[1:], paths[1:])
        return [a, b], f"b.h5: no row for {paths[0]}, which"
    if case == "extra image":
        b = write(tmp / "b.h5", second, y, [*paths[:-1], "class_3/extra.jpg"])
        return [a, b], f"b.h5: no row for {paths[-1]}"
    if case == "superset":
        b = write(tmp / "b.h5", np.vstack([second, second[:1]]), np.append(y, 0),
                  [*paths, "class_0/extra.jpg"])
        return [a, b], "b.h5: has class_0/extra.jpg, which"
    if case == "path twice":
        b = write(tmp / "b.h5", np.vstack([second, second[:1]]), np.append(y, 0),
                  [*paths, paths[0]])
        return [a, b], f"b.h5: {paths[0]} has two rows, so its rows cannot be aligned"
    if case == "other label":
        swapped = y.copy()
        swapped[5] = 3
        b = write(tmp / "b.h5", second, swapped, paths)
        return [a, b], f"b.h5: {paths[5]} is labelled 'class_3', in"
    assert case == "other images version"
    b = write(tmp / "b.h5", second, y, paths, dataset_fingerprint="changed-since")
    return [a, b], "b.h5: extracted from another version of the images"


REFUSALS = ["same file twice", "other classes", "fewer classes", "missing image",
            "extra image", "superset", "path twice", "other label", "other images version"]


@pytest.mark.parametrize("case", REFUSALS)
def test_files_that_cannot_be_aligned_are_refused_naming_the_first_difference(
    tmp_path: Path, case: str
) -> None:
    paths, message = _refusal(tmp_path, case)
    with pytest.raises(fusion.FusionError) as raised:
        fusion.read_fused(paths)
    text = str(raised.value)
    assert message in text and "\n" not in text


def test_rows_of_several_extractors_join_and_an_unreadable_image_stays_unreadable() -> None:
    ones = iter([(0, np.ones(3)), (1, np.ones(3)), (2, None)])
    zeros = iter([(0, np.zeros(2)), (1, None), (2, np.zeros(2))])
    joined = list(fusion.joined_rows([ones, zeros]))
    assert [index for index, _ in joined] == [0, 1, 2]
    np.testing.assert_array_equal(joined[0][1], [1, 1, 1, 0, 0])
    assert joined[1][1] is None and joined[2][1] is None


# -- classify -----------------------------------------------------------------------------


def run(outputs: Path, *args: str) -> Result:
    return CliRunner().invoke(classify_main, [*args, "--outputs", str(outputs), "--jobs", "1",
                                              "--grid", "C=0.1,1"])


def ledger(outputs: Path) -> list[dict[str, str]]:
    with open(outputs / "results.csv", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_fused_run_beats_each_file_and_is_recorded_as_fused(pair, outputs: Path) -> None:
    a, b = pair
    for args in (["--features", str(a)], ["--features", str(b)],
                 ["--features", str(a), "--features", str(b)]):
        result = run(outputs, *args)
        assert result.exit_code == 0, result.output
    alone_a, alone_b, fused = ledger(outputs)
    assert max(float(alone_a["accuracy"]), float(alone_b["accuracy"])) < 0.7
    assert float(fused["accuracy"]) >= 0.95
    assert fused["backbone"] == "vgg16 + resnet50" and fused["features"] == f"{a} + {b}"
    assert "fused: 2 files of the same images" in result.output
    history = CliRunner().invoke(classify_main, ["--history", "--outputs", str(outputs)])
    fused_row = next(line for line in history.output.splitlines() if " + " in line)
    assert "vgg16 avg + resnet50" in fused_row  # the extractor column, 22 characters at most
    assert fused_row.split()[2] == "logreg"
    metrics = json.loads((Path(fused["report"]) / "metrics.json").read_text())
    assert [source["dims"] for source in metrics["features"]] == [8, 8]
    (model,) = [m for m in (outputs / "models").iterdir() if "+" in m.name]
    bundle = load_bundle(model)
    assert [e["backbone"] for e in bundle.extractors] == ["vgg16", "resnet50"]
    assert [e["feature_dim"] for e in bundle.extractors] == [8, 8]


def test_dataset_with_several_backbones_fuses_their_files(pair, outputs: Path) -> None:
    result = run(outputs, "--dataset", "toy", "--backbone", "resnet50", "--backbone", "vgg16")
    assert result.exit_code == 0, result.output
    (row,) = ledger(outputs)
    assert row["backbone"] == "resnet50 + vgg16" and float(row["accuracy"]) >= 0.95


def test_dataset_with_two_poolings_fuses_avg_and_max(outputs: Path) -> None:
    first, second, y, paths = halves()
    folder = outputs / "features"
    write(folder / "toy-vgg16-avg.h5", first, y, paths)
    write(folder / "toy-vgg16-max.h5", second, y, paths, pooling="max")
    result = run(outputs, "--dataset", "toy", "--backbone", "vgg16",
                 "--pooling", "avg", "--pooling", "max")
    assert result.exit_code == 0, result.output
    (row,) = ledger(outputs)
    assert (row["backbone"], row["pooling"]) == ("vgg16 + vgg16", "avg + max")


def test_mismatched_files_are_one_line_errors_and_write_nothing(tmp_path, outputs) -> None:
    paths, message = _refusal(tmp_path, "missing image")
    result = run(outputs, *[arg for p in paths for arg in ("--features", str(p))])
    assert result.exit_code == 1 and "Traceback" not in result.output
    (error,) = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert message in error
    assert not (outputs / "results.csv").exists() and not (outputs / "models").exists()


def test_cluster_is_refused_for_fused_files(pair, outputs: Path) -> None:
    a, b = pair
    result = run(outputs, "--features", str(a), "--features", str(b), "--cluster", "local:1")
    assert result.exit_code == 2
    assert "--cluster reads one feature file" in result.output
