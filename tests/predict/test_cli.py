"""`predict` end to end: a model trained here labels images through the same extractor
as extract; its output, summary and one-line refusals."""

import csv
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from extract.backbones import registry
from tests.helpers.bundles import SIZE, copy_with_metadata, run_predict


def test_model_labels_its_own_training_images_and_reports_against_folders(trained):
    root, model, _ = trained
    result = run_predict("--model", model, root, "--top", "2")
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
    result = run_predict("--model", model, image, root / "class_2", "--top", "3", "--output", out)
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
    result = run_predict("--model", model, folder)
    assert result.exit_code == 0, result.output
    assert f"skipped (unreadable): {folder / 'broken.jpg'}" in result.output
    assert "\n1 image labelled, 1 skipped; " in result.output


def test_the_summary_is_one_line_with_start_up_and_prediction_rate(trained):
    root, model, _ = trained
    result = run_predict("--model", model, root / "class_1")
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
    result = run_predict("--model", model, root, "--weights", weights)
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
    result = run_predict(*args)
    assert result.exit_code == (2 if case in ("missing model", "not a model") else 1)
    assert message in result.output and "Traceback" not in result.output


def test_other_preprocessing_than_training_is_refused(trained, tmp_path):
    root, model, _ = trained

    def change(metadata):
        metadata["extractors"][0]["preprocessing"] = "keras.applications.resnet.preprocess_input"

    altered = copy_with_metadata(model, tmp_path / "altered", change)
    result = run_predict("--model", altered, root)
    assert result.exit_code == 1
    assert "preprocessed by keras.applications.resnet.preprocess_input" in result.output
    assert "this install uses keras.applications.vgg16.preprocess_input" in result.output


def test_a_model_of_random_weights_drawn_by_an_older_scheme_is_refused(trained, tmp_path):
    root, model, _ = trained
    assert json.loads((model / "bundle.json").read_text())["extractors"][0]["random_init"]

    def change(metadata):
        del metadata["extractors"][0]["random_init"]  # as bundles made before it existed

    altered = copy_with_metadata(model, tmp_path / "older", change)
    result = run_predict("--model", altered, root)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert ("Error: the model was trained on --weights random features of an older "
            "offtheshelf") in result.output


def test_a_run_where_every_image_was_skipped_fails(trained, tmp_path):
    _, model, _ = trained
    folder = tmp_path / "broken"
    folder.mkdir()
    for name in ("a.jpg", "b.jpg"):
        (folder / name).write_text("not an image")
    result = run_predict("--model", model, folder)
    assert result.exit_code == 1
    assert "0 images labelled, 2 skipped; " in result.output
    assert "Error: none of the 2 images could be read" in result.output
    (folder / "a.jpg").unlink()
    single = run_predict("--model", model, folder)
    assert single.exit_code == 1
    assert "0 images labelled, 1 skipped; " in single.output
    assert "Error: the image could not be read; see the skipped line above" in single.output


def test_an_unwritable_output_is_refused_before_any_work(trained, tmp_path):
    root, model, _ = trained
    output = tmp_path / "nowhere" / "p.csv"
    result = run_predict("--model", model, root, "--output", output)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.startswith(f"Error: --output {output}: no folder {output.parent}")
    assert "images labelled" not in result.output
    folder = run_predict("--model", model, root, "--output", tmp_path)
    assert folder.exit_code == 2 and "Invalid value for '--output'" in folder.output


def test_scores_are_printed_with_four_decimals(trained):
    root, model, _ = trained
    image = root / "class_0" / "img_001.png"
    result = run_predict("--model", model, image)
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
    result = run_predict("--model", model, folder)
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
    result = run_predict("--model", model, folder)
    assert result.exit_code == 0, result.output
    assert (f"note: no report against the class folders: tulip/ in {folder} are not classes "
            "of this model (the model knows class_0, class_1, class_2)") in result.output
    assert "against the class folders (" not in result.output
