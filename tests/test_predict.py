"""predict: a model trained here labels images through the same extractor as extract."""

import csv
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from imagefolders import make_folder

from classify.cli import main as classify_main
from extract.backbones import registry
from extract.cli import main as extract_main
from predict.cli import main as predict_main

SIZE = "32"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Class folders -> extract (random weights) -> classify logreg -> a model bundle."""
    tmp = tmp_path_factory.mktemp("predict")
    root = make_folder(tmp / "photos", classes=3, per_class=8, ext="png")
    outputs = tmp / "outputs"
    features = outputs / "features" / "photos-vgg16-avg.h5"
    result = CliRunner().invoke(extract_main, [
        "--dataset", str(root), "--backbone", "vgg16", "--pooling", "avg", "--weights",
        "random", "--image-size", SIZE, "--output", str(features)])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(classify_main, [
        "--features", str(features), "--model", "logreg", "--outputs", str(outputs),
        "--jobs", "1", "--cv", "2"])
    assert result.exit_code == 0, result.output
    (model,) = (outputs / "models").iterdir()
    return root, model, tmp


def _predict(*args):
    return CliRunner().invoke(predict_main, [str(a) for a in args])


def test_model_labels_its_own_training_images_and_reports_against_folders(trained):
    root, model, _ = trained
    result = _predict("--model", model, root, "--top", "2")
    assert result.exit_code == 0, result.output
    lines = [line[line.index(str(root)):] for line in result.output.splitlines()
             if f"{root}/" in line]  # stderr's progress bar may share a line
    assert len(lines) == 24
    correct = sum(line.split(": ")[1].startswith(line.split("/")[-2] + " ") for line in lines)
    assert correct >= 22, result.output
    assert "24 images labelled, 0 skipped" in result.output
    assert "%|" not in result.output  # stderr is no terminal here: no progress bar
    assert "against the class folders (24 images):" in result.output
    assert "class_0" in result.output and "accuracy" in result.output
    assert any(word in result.output for word in ("pretty sure", "somewhat sure", "unsure"))


def test_csv_output_has_top_k_columns_and_one_row_per_image(trained, tmp_path):
    root, model, _ = trained
    out = tmp_path / "predictions.csv"
    image = root / "class_1" / "img_000.png"
    result = _predict("--model", model, image, root / "class_2", "--top", "3", "--output", out)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == 9
    assert list(rows[0]) == ["path", "class_1", "score_1", "class_2", "score_2", "class_3",
                             "score_3", "score_kind", "confidence"]
    assert rows[0]["path"] == str(image) and rows[0]["score_kind"] == "probability"
    scores = [float(rows[0][f"score_{k}"]) for k in (1, 2, 3)]
    assert scores == sorted(scores, reverse=True) and abs(sum(scores) - 1) < 1e-6
    assert "against the class folders" not in result.output


def test_unreadable_images_are_reported_and_skipped(trained, tmp_path):
    root, model, _ = trained
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "a.png").write_bytes((root / "class_0" / "img_001.png").read_bytes())
    (folder / "broken.jpg").write_text("not an image")
    result = _predict("--model", model, folder)
    assert result.exit_code == 0, result.output
    assert f"skipped (unreadable): {folder / 'broken.jpg'}" in result.output
    assert "\n1 image labelled, 1 skipped; " in result.output


def test_the_summary_is_one_line_with_start_up_and_prediction_rate(trained):
    root, model, _ = trained
    result = _predict("--model", model, root / "class_1")
    assert result.exit_code == 0, result.output
    (summary,) = [line for line in result.output.splitlines() if "labelled" in line]
    found = re.fullmatch(r"8 images labelled, 0 skipped; (\d+\.\d) s: start-up (\d+\.\d) s, "
                         r"prediction (\d+\.\d) s at (\d+\.\d) images/s", summary)
    assert found, summary
    total, startup, prediction, rate = map(float, found.groups())
    assert abs(total - startup - prediction) <= 0.11 and startup > 0 and rate > 0


def test_on_a_terminal_the_bar_starts_after_the_start_up_lines(trained):
    """The model's start-up lines come first, each on its own line, then the bar."""
    import fcntl
    import pty
    import struct
    import termios

    root, model, _ = trained
    terminal, stderr = pty.openpty()
    fcntl.ioctl(stderr, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = subprocess.Popen([sys.executable, "-m", "predict.cli", "--model", str(model),
                                str(root / "class_2")], stdout=subprocess.PIPE, stderr=stderr)
    os.close(stderr)
    shown = b""
    while True:
        try:
            chunk = os.read(terminal, 4096)
        except OSError:  # EIO: the command has exited and closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(terminal)
    stdout = process.communicate(timeout=300)[0].decode()
    assert process.returncode == 0, shown.decode() + stdout
    text = shown.decode()
    before_bar = text[:text.index("predict:")]
    assert "openvino: using the converted vgg16" in before_bar, text
    assert before_bar.rstrip("\r").endswith("\n"), text  # the bar opens a line of its own
    assert "8/8" in text and "8 images labelled, 0 skipped; " in stdout


def test_other_weights_than_training_are_refused(trained, tmp_path):
    root, model, _ = trained
    other = registry.build("vgg16", weights="random", pooling="avg", input_size=int(SIZE))
    for variable in other.trainable_variables:
        variable.assign(variable * 0.5)
    weights = tmp_path / "other.weights.h5"
    other.save_weights(weights)
    result = _predict("--model", model, root, "--weights", weights)
    assert result.exit_code == 1
    assert f"--weights {weights} is sha256:" in result.output
    assert "but the model was trained with random" in result.output


@pytest.mark.parametrize("case", ["missing image", "missing model", "not a model", "empty"])
def test_bad_paths_are_one_line_errors(trained, tmp_path, case):
    root, model, _ = trained
    if case == "missing image":
        args, message = ("--model", model, tmp_path / "nope.jpg"), "nope.jpg: no such file"
    elif case == "missing model":
        args, message = ("--model", tmp_path / "m", root), "m: no such model"
    elif case == "not a model":
        (tmp_path / "bogus").mkdir()
        args, message = ("--model", tmp_path / "bogus", root), "bogus: no bundle.json; not a model"
    else:
        (tmp_path / "empty").mkdir()
        args, message = ("--model", model, tmp_path / "empty"), "no images found in"
    result = _predict(*args)
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output


def _copy_with_metadata(model, target, change):
    """The bundle `model` copied to `target`, its bundle.json passed through `change`."""
    shutil.copytree(model, target)
    metadata = json.loads((target / "bundle.json").read_text())
    change(metadata)
    (target / "bundle.json").write_text(json.dumps(metadata))
    return target


def test_other_preprocessing_than_training_is_refused(trained, tmp_path):
    root, model, _ = trained

    def change(metadata):
        metadata["extractors"][0]["preprocessing"] = "keras.applications.resnet.preprocess_input"

    altered = _copy_with_metadata(model, tmp_path / "altered", change)
    result = _predict("--model", altered, root)
    assert result.exit_code == 1
    assert "preprocessed by keras.applications.resnet.preprocess_input" in result.output
    assert "this install uses keras.applications.vgg16.preprocess_input" in result.output


def test_a_model_of_random_weights_drawn_by_an_older_scheme_is_refused(trained, tmp_path):
    root, model, _ = trained
    assert json.loads((model / "bundle.json").read_text())["extractors"][0]["random_init"]

    def change(metadata):
        del metadata["extractors"][0]["random_init"]  # as bundles made before it existed

    altered = _copy_with_metadata(model, tmp_path / "older", change)
    result = _predict("--model", altered, root)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert ("Error: the model was trained on --weights random features of an older "
            "offtheshelf") in result.output


def test_features_are_rounded_to_the_dtype_the_model_was_trained_on(trained):
    """A model trained on a --dtype float16 file sees float16-rounded features."""

    from predict.predicting import feature_rows

    root, _, _ = trained
    images = sorted((root / "class_0").glob("*.png"))[:4]
    extractor = {"backbone": "vgg16", "pooling": "avg", "input_size": int(SIZE),
                 "preprocessing": registry.preprocessing_name("vgg16"), "feature_dim": 512,
                 "weights": "random"}
    exact = np.stack([row for _, row in feature_rows(images, extractor, "random", 2)])
    rounded = np.stack([row for _, row in feature_rows(
        images, {**extractor, "dtype": "float16"}, "random", 2)])
    assert rounded.dtype == np.float32
    np.testing.assert_array_equal(rounded, exact.astype(np.float16).astype(np.float32))
    assert not np.array_equal(rounded, exact)


def test_a_bundle_holding_a_hostile_object_is_refused(trained, tmp_path):
    """An estimator file whose objects would call os.system on load is never loaded."""
    import skops.io as sio
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    root, model, _ = trained
    hostile = _copy_with_metadata(model, tmp_path / "hostile", lambda metadata: None)
    estimator = sio.load(model / "estimator.skops")
    sio.dump(Pipeline([("boom", FunctionTransformer(os.system)), ("model", estimator)]),
             hostile / "estimator.skops")
    result = _predict("--model", hostile, root)
    assert result.exit_code == 1
    assert "holds types classify never saves (posix.system)" in result.output
    assert "refused" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_an_old_pickled_bundle_loads_only_with_trust(trained, tmp_path):
    """Format-1 bundles (one joblib pickle) need --trust, and say what it means."""
    import joblib
    import skops.io as sio

    root, model, _ = trained
    metadata = json.loads((model / "bundle.json").read_text())
    old = tmp_path / "old.joblib"
    joblib.dump({"format_version": 1, "model": "logreg",
                 "estimator": sio.load(model / "estimator.skops"),
                 "label_names": metadata["label_names"],
                 "extractor": metadata["extractors"][0]}, old)
    refused = _predict("--model", old, root / "class_0")
    assert refused.exit_code == 1
    assert "an old pickled model" in refused.output and "pass --trust" in refused.output
    trusted = _predict("--model", old, "--trust", root / "class_0")
    assert trusted.exit_code == 0, trusted.output
    assert "warning: loading" in trusted.output and "with pickle (--trust)" in trusted.output
    assert "8 images labelled, 0 skipped" in trusted.output


def test_a_run_where_every_image_was_skipped_fails(trained, tmp_path):
    _, model, _ = trained
    folder = tmp_path / "broken"
    folder.mkdir()
    for name in ("a.jpg", "b.jpg"):
        (folder / name).write_text("not an image")
    result = _predict("--model", model, folder)
    assert result.exit_code == 1
    assert "0 images labelled, 2 skipped; " in result.output
    assert "Error: none of the 2 images could be read" in result.output
    (folder / "a.jpg").unlink()
    single = _predict("--model", model, folder)
    assert single.exit_code == 1
    assert "0 images labelled, 1 skipped; " in single.output
    assert "Error: the image could not be read; see the skipped line above" in single.output


def test_an_unwritable_output_is_refused_before_any_work(trained, tmp_path):
    root, model, _ = trained
    output = tmp_path / "nowhere" / "p.csv"
    result = _predict("--model", model, root, "--output", output)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.startswith(f"Error: --output {output}: no folder {output.parent}")
    assert "images labelled" not in result.output
    folder = _predict("--model", model, root, "--output", tmp_path)
    assert folder.exit_code == 2 and "Invalid value for '--output'" in folder.output


@pytest.mark.parametrize(("name", "content"), [
    ("README.md", b"# offtheshelf\n"), ("x.h5", b"\x89HDF\r\n\x1a\n" + bytes(56)),
    ("notes.joblib", b"not a pickle"), ("weights.pkl", b"PK\x03\x04" + bytes(60))])
def test_a_file_that_is_no_pickle_is_not_a_model_and_trust_is_not_suggested(tmp_path, name,
                                                                              content):
    path = tmp_path / name
    path.write_bytes(content)
    for trust in ((), ("--trust",)):
        result = _predict("--model", path, *trust, tmp_path)
        assert result.exit_code == 1
        assert result.output == (f"Error: {path}: not a model saved by classify (expected a "
                                 "folder in outputs/models/ holding bundle.json)\n")


@pytest.mark.parametrize("compress", [0, 3, "gzip", "bz2", "xz", "lzma"])
def test_every_kind_of_joblib_file_counts_as_an_old_pickled_model(tmp_path, compress):
    import joblib

    old = tmp_path / "old.pkl"
    joblib.dump({"anything": 1}, old, compress=compress)
    result = _predict("--model", old, tmp_path)
    assert result.exit_code == 1
    assert f"{old}: an old pickled model" in result.output and "pass --trust" in result.output


def test_a_file_that_is_no_model_says_so_without_a_stray_number(tmp_path):
    junk = tmp_path / "junk.joblib"
    junk.write_bytes(b"\x80\x05" + b"#" * 62)  # a pickle's first bytes, then junk
    result = _predict("--model", junk, "--trust", tmp_path)
    assert result.exit_code == 1
    assert f"{junk}: not a model saved by classify (it cannot be read as one" in result.output
    assert "(35)" not in result.output


def test_scores_are_printed_with_four_decimals(trained):
    root, model, _ = trained
    image = root / "class_0" / "img_001.png"
    result = _predict("--model", model, image)
    assert result.exit_code == 0, result.output
    line = next(line[line.index(f"{image}: "):] for line in result.output.splitlines()
                if f"{image}: " in line)  # stderr's progress bar may share a line
    shown = line[len(f"{image}: "):].split(" (")[0]
    scores = [part.split()[-1] for part in shown.split(", ")]
    assert all(len(score.split(".")[1]) == 4 for score in scores), line


def test_a_folder_with_an_unknown_class_folder_says_what_the_report_leaves_out(trained, tmp_path):
    root, model, _ = trained
    folder = tmp_path / "test_folder"
    shutil.copytree(root / "class_0", folder / "class_0")
    shutil.copytree(root / "class_1", folder / "tulip")
    result = _predict("--model", model, folder)
    assert result.exit_code == 0, result.output
    assert "16 images labelled, 0 skipped" in result.output
    assert ("note: 8 image(s) in tulip/ left out of the report: not classes of this model "
            "(the model knows class_0, class_1, class_2)") in result.output
    assert "against the class folders (8 images):" in result.output
    report = result.output[result.output.index("against the class folders"):]
    assert "class_0" in report and "tulip" not in report


def test_a_folder_of_only_unknown_classes_explains_why_there_is_no_report(trained, tmp_path):
    root, model, _ = trained
    folder = tmp_path / "holiday"
    shutil.copytree(root / "class_2", folder / "tulip")
    result = _predict("--model", model, folder)
    assert result.exit_code == 0, result.output
    assert (f"note: no report against the class folders: tulip/ in {folder} are not classes "
            "of this model (the model knows class_0, class_1, class_2)") in result.output
    assert "against the class folders (" not in result.output
