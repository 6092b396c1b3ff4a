"""Scanning rules: which files are images of which class, in which order."""

import os

import pytest

from extract.scan import ScanError, scan
from tests.helpers.imagefolders import class_image


def _touch_image(path, label=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP", ".gif": "GIF",
           ".webp": "WEBP"}[path.suffix.lower()]
    class_image(label, 0).save(path, format=fmt)


def test_classes_sorted_labels_are_indices_and_nested_images_count(tmp_path):
    _touch_image(tmp_path / "zebra" / "a.jpg")
    _touch_image(tmp_path / "apple" / "deep" / "er" / "b.PNG")
    _touch_image(tmp_path / "apple" / "c.JPEG")
    result = scan(tmp_path)
    assert result.label_names == ["apple", "zebra"]
    assert result.paths == ["apple/c.JPEG", "apple/deep/er/b.PNG", "zebra/a.jpg"]
    assert result.labels == [0, 0, 1]


def test_every_extension_in_any_case_hidden_and_non_images_ignored(tmp_path):
    for ext in (".jpg", ".JPEG", ".png", ".Bmp", ".gif", ".WEBP"):
        _touch_image(tmp_path / "a" / f"x{ext}")
    _touch_image(tmp_path / "b" / "y.jpg")
    _touch_image(tmp_path / "b" / ".hidden.jpg")
    _touch_image(tmp_path / "b" / ".cache" / "z.jpg")
    (tmp_path / "b" / "notes.txt").write_text("not an image")
    _touch_image(tmp_path / ".git" / "w.jpg")
    result = scan(tmp_path)
    assert result.label_names == ["a", "b"]
    assert len([p for p in result.paths if p.startswith("a/")]) == 6
    assert [p for p in result.paths if p.startswith("b/")] == ["b/y.jpg"]


def test_missing_root_is_an_error_naming_it(tmp_path):
    with pytest.raises(ScanError, match=f"dataset folder not found: {tmp_path / 'nope'}"):
        scan(tmp_path / "nope")


def test_fewer_than_two_classes_is_an_error_naming_the_folder(tmp_path):
    _touch_image(tmp_path / "only" / "a.jpg")
    with pytest.raises(ScanError, match=f"{tmp_path}: found 1 class folder"):
        scan(tmp_path)


def test_empty_class_folder_warns_and_is_left_out(tmp_path):
    _touch_image(tmp_path / "a" / "1.jpg")
    _touch_image(tmp_path / "b" / "1.jpg")
    (tmp_path / "empty").mkdir()
    with pytest.warns(UserWarning, match=f"class folder {tmp_path / 'empty'} holds no images"):
        result = scan(tmp_path)
    assert result.label_names == ["a", "b"]


def test_symlink_loop_is_walked_once(tmp_path):
    _touch_image(tmp_path / "a" / "1.jpg")
    _touch_image(tmp_path / "b" / "1.jpg")
    os.symlink(tmp_path / "a", tmp_path / "a" / "loop")
    os.symlink(tmp_path / "b" / "missing.jpg", tmp_path / "b" / "dangling.jpg")
    assert scan(tmp_path).paths == ["a/1.jpg", "b/1.jpg"]


def test_fingerprint_changes_when_a_file_is_added_removed_or_rewritten(tmp_path):
    _touch_image(tmp_path / "a" / "1.jpg")
    _touch_image(tmp_path / "b" / "1.jpg")
    first = scan(tmp_path).fingerprint
    assert scan(tmp_path).fingerprint == first
    _touch_image(tmp_path / "b" / "2.jpg")
    added = scan(tmp_path).fingerprint
    assert added != first
    os.remove(tmp_path / "b" / "2.jpg")
    assert scan(tmp_path).fingerprint == first
    st = os.stat(tmp_path / "a" / "1.jpg")
    os.utime(tmp_path / "a" / "1.jpg", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert scan(tmp_path).fingerprint != first


def test_unicode_and_spaces_in_names(tmp_path):
    _touch_image(tmp_path / "chat noir" / "photo été.jpg")
    _touch_image(tmp_path / "犬" / "1.png")
    result = scan(tmp_path)
    assert result.label_names == ["chat noir", "犬"]
    assert result.paths == ["chat noir/photo été.jpg", "犬/1.png"]
