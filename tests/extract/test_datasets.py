"""Named datasets: the real download-verify-unpack-organize code, served from 127.0.0.1.

Archives shaped like the official ones are built at test time (the flowers one from a few
real photographs in ../shared/data) and served by a local HTTP server; nothing reaches
the internet and /work/shared is only read.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import io
import socket
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from extract import datasets
from extract.datasets import NAMED, DatasetError, NamedDataset, Source, fetch, resolve_dataset
from tests.helpers.imagefolders import FLOWERS17_JPG

FLOWER_SUBSET = {1: "daffodil", 2: "daffodil", 81: "snowdrop", 82: "snowdrop", 161: "lilyvalley"}


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Keep pytest output free of access-log lines."""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A real HTTP server on 127.0.0.1 serving a temporary folder: (folder, base URL)."""
    www = tmp_path / "www"
    www.mkdir()
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(www))
    )
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    yield www, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def datasets_dir(tmp_path: Path) -> Path:
    return tmp_path / "datasets"


@pytest.fixture
def flowers_jpg() -> Path:
    if not FLOWERS17_JPG.is_dir():
        pytest.skip(f"real flowers17 images not available at {FLOWERS17_JPG}")
    return FLOWERS17_JPG


@pytest.fixture
def jpeg_bytes() -> bytes:
    image = pytest.importorskip("PIL.Image")
    buf = io.BytesIO()
    image.new("RGB", (8, 8), (200, 30, 30)).save(buf, "JPEG")
    return buf.getvalue()


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def _tar_gz(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def _source(base: str, path: Path, md5: str | None = None) -> Source:
    return Source(f"{base}/{path.name}", path.name, md5 or _md5(path))


def _spec(name: str, *sources: Source) -> NamedDataset:
    return dataclasses.replace(NAMED[name], sources=sources)


def _closed_port_url(filename: str) -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/{filename}"


def _tree(root: Path) -> dict[str, set[str]]:
    return {d.name: {f.name for f in d.iterdir()} for d in root.iterdir()}


@pytest.fixture
def flowers_tgz(server: tuple[Path, str], flowers_jpg: Path) -> Source:
    """A 17flowers.tgz-like archive (jpg/image_NNNN.jpg + jpg/files.txt) of five real photos."""
    www, base = server
    names = [f"image_{k:04d}.jpg" for k in FLOWER_SUBSET]
    members = {f"jpg/{n}": (flowers_jpg / n).read_bytes() for n in names}
    members["jpg/files.txt"] = "".join(f"{n}\n" for n in names).encode()
    return _source(base, _tar_gz(www / "17flowers.tgz", members))


def _caltech_members(jpeg: bytes) -> dict[str, bytes]:
    classes = ("accordion", "airplanes", "BACKGROUND_Google")
    return {f"101_ObjectCategories/{c}/image_{i:04d}.jpg": jpeg for c in classes for i in (1, 2)}


@pytest.fixture
def caltech_tarball(server: tuple[Path, str], jpeg_bytes: bytes) -> Source:
    """The old plain 101_ObjectCategories.tar.gz."""
    www, base = server
    return _source(base, _tar_gz(www / "101_ObjectCategories.tar.gz", _caltech_members(jpeg_bytes)))


@pytest.fixture
def caltech_zip(server: tuple[Path, str], jpeg_bytes: bytes, tmp_path: Path) -> Source:
    """The current caltech-101.zip: the tarball nested in it, plus Annotations and macOS junk."""
    www, base = server
    nested = _tar_gz(tmp_path / "101_ObjectCategories.tar.gz", _caltech_members(jpeg_bytes))
    path = www / "caltech-101.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.write(nested, "caltech-101/101_ObjectCategories.tar.gz")
        zf.writestr("caltech-101/Annotations.tar", b"not needed")
        zf.writestr("__MACOSX/caltech-101/._101_ObjectCategories.tar.gz", b"resource fork")
    return _source(base, path)


def test_flowers17_is_downloaded_verified_unpacked_and_sorted(
    flowers_tgz: Source, datasets_dir: Path, flowers_jpg: Path
) -> None:
    dest = fetch(_spec("flowers17", flowers_tgz), datasets_dir / "flowers17")

    assert dest == datasets_dir / "flowers17"
    assert _tree(dest) == {
        "daffodil": {"image_0001.jpg", "image_0002.jpg"},
        "snowdrop": {"image_0081.jpg", "image_0082.jpg"},
        "lilyvalley": {"image_0161.jpg"},
    }
    copied = dest / "lilyvalley" / "image_0161.jpg"
    assert copied.read_bytes() == (flowers_jpg / "image_0161.jpg").read_bytes()
    # The verified archive is kept for reuse; no .part or scratch folder is left.
    assert sorted(p.name for p in datasets_dir.iterdir()) == ["17flowers.tgz", "flowers17"]


def test_resolve_named_dataset_fetches_into_datasets_dir(
    flowers_tgz: Source, datasets_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(NAMED, "flowers17", _spec("flowers17", flowers_tgz))

    root = resolve_dataset("flowers17", datasets_dir)

    assert root == datasets_dir / "flowers17"
    assert set(_tree(root)) == {"daffodil", "snowdrop", "lilyvalley"}


@pytest.mark.parametrize("archive", ["caltech_zip", "caltech_tarball"])
def test_caltech101_from_either_archive_drops_background(
    archive: str, request: pytest.FixtureRequest, datasets_dir: Path
) -> None:
    source: Source = request.getfixturevalue(archive)

    dest = fetch(_spec("caltech101", source), datasets_dir / "caltech101")

    assert _tree(dest) == {
        "accordion": {"image_0001.jpg", "image_0002.jpg"},
        "airplanes": {"image_0001.jpg", "image_0002.jpg"},
    }
    assert {p.name for p in datasets_dir.iterdir()} == {"caltech101", source.filename}


def test_falls_back_to_the_next_source(
    server: tuple[Path, str], caltech_tarball: Source, datasets_dir: Path
) -> None:
    _, base = server
    missing = Source(f"{base}/caltech-101.zip", "caltech-101.zip", "0" * 32)  # HTTP 404

    dest = fetch(_spec("caltech101", missing, caltech_tarball), datasets_dir / "caltech101")

    assert set(_tree(dest)) == {"accordion", "airplanes"}
    # Neither the failed download's .part nor any scratch folder is left behind.
    assert {p.name for p in datasets_dir.iterdir()} == {"caltech101", caltech_tarball.filename}


def test_checksum_mismatch_names_file_and_md5s_and_leaves_nothing(
    flowers_tgz: Source, datasets_dir: Path
) -> None:
    wrong = dataclasses.replace(flowers_tgz, md5="0123456789abcdef0123456789abcdef")

    with pytest.raises(DatasetError) as err:
        fetch(_spec("flowers17", wrong), datasets_dir / "flowers17")

    message = str(err.value)
    assert "checksum mismatch for 17flowers.tgz" in message
    assert f"expected md5 {wrong.md5}, got {flowers_tgz.md5}" in message
    assert "\n" not in message
    assert list(datasets_dir.iterdir()) == []


def test_a_bad_archive_left_by_hand_is_deleted(
    flowers_tgz: Source, datasets_dir: Path
) -> None:
    datasets_dir.mkdir()
    (datasets_dir / "17flowers.tgz").write_bytes(b"truncated")
    offline = dataclasses.replace(flowers_tgz, url=_closed_port_url("17flowers.tgz"))

    with pytest.raises(DatasetError, match="checksum mismatch for 17flowers.tgz"):
        fetch(_spec("flowers17", offline), datasets_dir / "flowers17")

    assert list(datasets_dir.iterdir()) == []


def test_offline_error_names_url_reason_and_where_to_put_files(datasets_dir: Path) -> None:
    url = _closed_port_url("caltech-101.zip")
    spec = _spec("caltech101", Source(url, "caltech-101.zip", "0" * 32))
    dest = datasets_dir / "caltech101"

    with pytest.raises(DatasetError) as err:
        fetch(spec, dest)

    message = str(err.value)
    assert f"download failed: {url} (" in message
    assert "refused" in message.lower()
    assert f"download {url} yourself" in message
    assert f"(without BACKGROUND_Google) in {dest}/ (one folder per class)" in message
    assert "\n" not in message
    assert list(datasets_dir.iterdir()) == []


def test_an_archive_placed_by_hand_is_used_offline(
    flowers_tgz: Source, server: tuple[Path, str], datasets_dir: Path
) -> None:
    www, _ = server
    datasets_dir.mkdir()
    (datasets_dir / "17flowers.tgz").write_bytes((www / "17flowers.tgz").read_bytes())
    offline = dataclasses.replace(flowers_tgz, url=_closed_port_url("17flowers.tgz"))

    dest = fetch(_spec("flowers17", offline), datasets_dir / "flowers17")

    assert set(_tree(dest)) == {"daffodil", "snowdrop", "lilyvalley"}


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_members_escaping_the_folder_are_refused(
    kind: str, server: tuple[Path, str], datasets_dir: Path, tmp_path: Path
) -> None:
    www, base = server
    if kind == "tar":
        members = {"jpg/image_0001.jpg": b"x", "../escaped.jpg": b"x"}
        archive = _tar_gz(www / "17flowers.tgz", members)
    else:
        archive = www / "17flowers.tgz"
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("../escaped.jpg", b"x")

    with pytest.raises(DatasetError, match=r"unsafe member in 17flowers.tgz: \.\./escaped.jpg"):
        fetch(_spec("flowers17", _source(base, archive)), datasets_dir / "flowers17")

    assert not (tmp_path / "escaped.jpg").exists()
    assert sorted(p.name for p in datasets_dir.iterdir()) == ["17flowers.tgz"]


def test_animals_missing_says_where_to_put_it(datasets_dir: Path) -> None:
    with pytest.raises(DatasetError) as err:
        resolve_dataset("animals", datasets_dir)

    animals = datasets_dir / "animals"
    assert f"{animals}/cats/, {animals}/dogs/ and {animals}/panda/" in str(err.value)
    assert not datasets_dir.exists()


def test_existing_named_folder_is_returned_without_download(
    datasets_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_fetch(spec: NamedDataset, dest: Path) -> Path:
        raise AssertionError("an existing dataset folder must not be fetched")

    monkeypatch.setattr(datasets, "fetch", no_fetch)
    for name in NAMED:
        (datasets_dir / name / "some_class").mkdir(parents=True)
        assert resolve_dataset(name, datasets_dir) == datasets_dir / name


def test_any_other_value_is_a_folder_path(tmp_path: Path, datasets_dir: Path) -> None:
    (tmp_path / "mine" / "cats").mkdir(parents=True)

    assert resolve_dataset(str(tmp_path / "mine"), datasets_dir) == tmp_path / "mine"
    missing = tmp_path / "nope"
    with pytest.raises(DatasetError) as err:
        resolve_dataset(str(missing), datasets_dir)
    assert str(err.value) == (
        f"dataset folder not found: {missing} (named datasets: caltech101, flowers17, animals)"
    )


def test_organize_flowers17_links_all_1360_images_into_17_classes(
    flowers_jpg: Path, tmp_path: Path
) -> None:
    out = tmp_path / "flowers17"

    assert datasets.organize_flowers17(flowers_jpg, out, link=True) == 1360

    tree = _tree(out)
    assert set(tree) == set(datasets.FLOWERS17_CLASSES)
    assert all(len(files) == 80 for files in tree.values())
    assert {"image_0080.jpg"} <= tree["daffodil"] and {"image_0081.jpg"} <= tree["snowdrop"]
    assert {"image_1360.jpg"} <= tree["pansy"]
    link = out / "pansy" / "image_1360.jpg"
    assert link.is_symlink() and link.resolve() == (flowers_jpg / "image_1360.jpg").resolve()
    assert [p.name for p in tmp_path.iterdir()] == ["flowers17"]
    with pytest.raises(DatasetError, match="already exists"):
        datasets.organize_flowers17(flowers_jpg, out, link=True)


def test_registry_pins_the_official_sources() -> None:
    assert list(NAMED) == ["caltech101", "flowers17", "animals"]
    assert [s.filename for s in NAMED["caltech101"].sources] == [
        "caltech-101.zip",
        "101_ObjectCategories.tar.gz",
    ]
    assert NAMED["flowers17"].sources[0].md5 == "b59a65d8d1a99cd66944d474e1289eab"
    assert NAMED["animals"].sources == ()
