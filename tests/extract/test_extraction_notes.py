"""What a run says about the files beside its output, and its summary when no image
needed the model."""

from pathlib import Path

from extract import extraction
from extract.plan import plan
from extract.scan import scan
from extract.settings import Settings
from tests.helpers.synthetic import SETTINGS, SyntheticRows, add_images, extract_once


def _default_output(root: Path, folder: Path, settings: Settings = SETTINGS) -> Path:
    """The cache's own name for `root`'s features (extract_once's dataset is 'synthetic')."""
    return extraction.default_output(folder, "synthetic", settings, plan(scan(root)))


def _notes(root: Path, output: Path, settings: Settings = SETTINGS) -> list[str]:
    said: list[str] = []
    extraction.run(scan(root), settings, output, dataset_name="synthetic",
                   distributor=SyntheticRows(), log=said.append, progress=False)
    return [line for line in said if line.startswith("note:")]


def test_a_file_of_the_same_settings_under_another_name_is_named_as_such(tmp_path):
    root = add_images(tmp_path / "images", 0, 4)
    folder = tmp_path / "features"
    extract_once(root, folder / "fresh.h5")
    output = _default_output(root, folder)
    assert _notes(root, output) == [
        (f"note: fresh.h5 has this folder with these settings under a name of its own; it is "
         f"kept, and {output.name} is made (--output {folder / 'fresh.h5'} would use it)")]


def test_files_of_other_settings_are_named_beside_the_caches_own_name(tmp_path):
    root = add_images(tmp_path / "images", 0, 4)
    folder = tmp_path / "features"
    extract_once(root, folder / "fresh.h5")
    other = Settings("vgg16", "random", "flatten", 192)
    (note,) = _notes(root, _default_output(root, folder, other), other)
    assert note.startswith("note: fresh.h5 has this folder and backbone with other settings "
                           "(input_size 224 vs 192)")


def test_an_output_named_with_output_gets_no_notes_on_its_neighbours(tmp_path):
    root = add_images(tmp_path / "images", 0, 4)
    folder = tmp_path / "mine"
    extract_once(root, folder / "fresh.h5")
    other = Settings("vgg16", "random", "flatten", 192)
    assert _notes(root, folder / "fresh2.h5") == []
    assert _notes(root, folder / "small.h5", other) == []


def test_a_run_with_nothing_to_compute_gives_no_rate(tmp_path):
    root = add_images(tmp_path / "images", 0, 4)
    output = tmp_path / "f.h5"
    extract_once(root, output)
    (root / "class_0" / "img_000.jpg").unlink()  # and the unreadable one, which is tried again
    (root / "class_1" / "broken_000.jpg").unlink()
    outcome = extract_once(root, output)
    assert outcome.action == "updated" and outcome.computed == 0
    summary = outcome.summary()
    assert "; 0 computed, 11 reused; " in summary, summary
    assert "images/s" not in summary and "start-up" not in summary, summary
