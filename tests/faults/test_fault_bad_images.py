"""Junk a real dataset holds, through the full `extract` in a child process.

Covered elsewhere and not repeated: truncated, empty and text-as-JPEG files, CMYK,
palette, RGBA and grayscale (tests/test_extract.py); scan-level symlink loops and
Unicode names (tests/test_scan.py). Here: a 10,000 x 10,000 PNG with memory measured,
16-bit PNG, EXIF-rotated JPEG, the first frame of an animated GIF, spaces and
non-ASCII in class, file and dataset names end to end, a file name that is not UTF-8,
a symlink loop and a dangling link inside a class folder.
"""

from __future__ import annotations

import os
import struct
import sys
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from extract import featurefile
from tests.helpers.faultkit import peak_rss_run, user_lines
from tests.helpers.imagefolders import class_image

HUGE = 10_000
RSS_LIMIT = 4 * 1024**3


def write_png(path: Path, width: int, height: int, rows: Iterable[bytes], depth: int = 8) -> None:
    """An RGB PNG streamed row by row (a 10,000 x 10,000 image never sits in memory)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))

    packer = zlib.compressobj(1)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, 2, 0, 0, 0)))
        data = [packer.compress(b"\x00" + row) for row in rows]
        data.append(packer.flush())
        f.write(chunk(b"IDAT", b"".join(data)))
        f.write(chunk(b"IEND", b""))


def _huge_rows() -> Iterable[bytes]:
    row = (bytes(range(256)) * (3 * HUGE // 256 + 1))[: 3 * HUGE]
    return (row for _ in range(HUGE))


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One extraction of a folder holding every case; its file, output and peak RSS."""
    work = tmp_path_factory.mktemp("bad_images")
    root = work / "jeu de données"
    cat, dog = root / "chat noir", root / "犬 dog"
    cat.mkdir(parents=True)
    dog.mkdir()

    class_image(0, 0).save(cat / "photo été 1.jpg")
    pixels = np.asarray(class_image(0, 1))
    Image.fromarray(pixels).save(cat / "16 bit ref.png")
    wide = pixels.astype(">u2") * 257  # 16-bit samples whose top byte is the 8-bit pixel
    write_png(cat / "16 bit.png", pixels.shape[1], pixels.shape[0],
              (r.tobytes() for r in wide), depth=16)
    os.symlink(".", cat / "loop")  # a folder that contains itself

    photo = class_image(1, 2)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    photo.save(dog / "exif.jpg", exif=exif.tobytes())
    photo.save(dog / "exif plain.jpg")
    photo.transpose(Image.Transpose.ROTATE_270).save(dog / "exif rotated.jpg")

    frames = [class_image(2, 0), class_image(1, 0), class_image(0, 0)]
    frames[0].save(dog / "anim.gif", save_all=True, append_images=frames[1:], duration=50)
    with Image.open(dog / "anim.gif") as gif:
        gif.convert("RGB").save(dog / "anim first.png")
        gif.seek(gif.n_frames - 1)
        gif.convert("RGB").save(dog / "anim last.png")

    write_png(dog / "huge.png", HUGE, HUGE, _huge_rows())
    (dog / os.fsdecode(b"caf\xe9.jpg")).write_bytes((dog / "exif plain.jpg").read_bytes())
    os.symlink(dog / "gone.jpg", dog / "dangling.jpg")

    cmd = [sys.executable, "-m", "extract", "--dataset", str(root), "--backbone", "vgg16",
           "--weights", "random", "--image-size", "32"]  # default output, under cwd
    status, rss = peak_rss_run(cmd, work / "stdout", work / "stderr", cwd=work)
    found = sorted((work / "outputs" / "features").glob("jeu de données-vgg16-flatten-*.h5"))
    out = found[0] if len(found) == 1 else work / "outputs" / "features" / "missing.h5"
    return {"status": status, "rss": rss, "out": out,
            "stdout": (work / "stdout").read_text(), "stderr": (work / "stderr").read_text()}


def _row(features: featurefile.Features, path: str) -> np.ndarray:
    return features.X[features.paths.index(path)]


def test_run_succeeds_with_bounded_memory(extracted: dict, ledger) -> None:
    ledger.record("bad images (one run, 10k x 10k PNG inside)",
                  recovered=extracted["status"] == 0 and extracted["rss"] < RSS_LIMIT)
    assert extracted["status"] == 0, extracted["stderr"][-3000:]
    assert "Traceback" not in extracted["stderr"]
    assert extracted["rss"] < RSS_LIMIT, f"peak RSS {extracted['rss'] / 2**30:.2f} GiB"
    assert "created: 10 rows, 0 skipped" in extracted["stdout"]


def test_huge_png_is_written(extracted: dict) -> None:
    features = featurefile.read_features(extracted["out"])
    assert "犬 dog/huge.png" in features.paths
    assert np.isfinite(_row(features, "犬 dog/huge.png")).all()


def test_names_with_spaces_and_non_ascii_survive_end_to_end(extracted: dict) -> None:
    features = featurefile.read_features(extracted["out"])  # the default name has both, too
    assert features.label_names == ["chat noir", "犬 dog"]
    by_path = dict(zip(features.paths, features.y.tolist()))  # rows in seeded order
    assert {p for p, label in by_path.items() if label == 0} == {
        "chat noir/16 bit ref.png", "chat noir/16 bit.png", "chat noir/photo été 1.jpg"}
    assert sorted(by_path.values()) == [0, 0, 0] + [1] * 7


def test_symlink_loop_and_dangling_link_add_nothing(extracted: dict) -> None:
    features = featurefile.read_features(extracted["out"])
    assert not [p for p in features.paths if "loop" in p or "dangling" in p]


def test_name_that_is_not_utf8_is_ignored_with_a_warning(extracted: dict) -> None:
    warnings = [line for line in user_lines(extracted["stderr"]) if line.startswith("warning:")]
    assert warnings == [
        (f"warning: {extracted['out'].parents[2]}/jeu de données/犬 dog/caf\\xe9.jpg: "
         "name is not valid UTF-8; ignored (rename it to include it)")
    ]


def test_16_bit_png_equals_its_8_bit_pixels(extracted: dict) -> None:
    features = featurefile.read_features(extracted["out"])
    np.testing.assert_array_equal(_row(features, "chat noir/16 bit.png"),
                                  _row(features, "chat noir/16 bit ref.png"))


def test_exif_orientation_is_not_applied(extracted: dict) -> None:
    """As documented: pixels as stored, the EXIF tag ignored."""
    features = featurefile.read_features(extracted["out"])
    tagged = _row(features, "犬 dog/exif.jpg")
    np.testing.assert_array_equal(tagged, _row(features, "犬 dog/exif plain.jpg"))
    assert not np.allclose(tagged, _row(features, "犬 dog/exif rotated.jpg"), atol=1e-3)


def test_animated_gif_gives_its_first_frame(extracted: dict) -> None:
    features = featurefile.read_features(extracted["out"])
    gif = _row(features, "犬 dog/anim.gif")
    np.testing.assert_array_equal(gif, _row(features, "犬 dog/anim first.png"))
    assert not np.allclose(gif, _row(features, "犬 dog/anim last.png"), atol=1e-3)
