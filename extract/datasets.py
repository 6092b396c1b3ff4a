"""Named datasets for `extract --dataset`: a name becomes a class-folder tree under datasets/.

A registered name (`caltech101`, `flowers17`, `animals`) resolves to `datasets/NAME`. When
that folder is missing, `fetch` downloads the official archive, checks its pinned md5,
unpacks it safely and sorts it into one folder per class, and only then renames the result
to `datasets/NAME`: a folder there is therefore always complete. Any other value is taken
as the path of a folder already in the class-folder layout.

Only the standard library and tqdm are imported, so resolving a dataset is cheap.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from common.errors import UserError

CHUNK = 1 << 20
TIMEOUT_S = 60
USER_AGENT = "offtheshelf (python urllib)"

FLOWERS17_CLASSES = (
    "daffodil", "snowdrop", "lilyvalley", "bluebell", "crocus", "iris", "tigerlily", "tulip",
    "fritillary", "sunflower", "daisy", "coltsfoot", "dandelion", "cowslip", "buttercup",
    "windflower", "pansy",
)
FLOWERS17_PER_CLASS = 80
_FLOWER_IMAGE = re.compile(r"image_(\d{4})\.jpg")


class DatasetError(UserError):
    """A dataset cannot be found or fetched; the message is one line meant for the user."""


@dataclass(frozen=True)
class Source:
    """One downloadable archive, pinned by md5 so a changed or truncated file is caught."""

    url: str
    filename: str
    md5: str


@dataclass(frozen=True)
class NamedDataset:
    """A registered dataset: archives tried in order, and how to sort one into class folders.

    `organize(unpacked, out)` creates the folder `out` (one sub-folder per class) from the
    unpacked archive; a dataset without sources has none. `manual_hint` tells the user how
    to provide the data by hand; it may use `{dest}` (the dataset folder), `{url}` and
    `{archive}` (the first source, and where its file is picked up if placed by hand).
    """

    name: str
    sources: tuple[Source, ...]
    organize: Callable[[Path, Path], None] | None
    manual_hint: str

    def hint(self, dest: Path) -> str:
        """The manual-placement advice for this dataset living at `dest`."""
        first = self.sources[0] if self.sources else None
        return self.manual_hint.format(
            dest=dest,
            url=first.url if first else "",
            archive=dest.parent / first.filename if first else "",
        )


def resolve_dataset(name_or_path: str, datasets_dir: Path) -> Path:
    """Return the class-folder root for a registered name (fetched if missing) or a path."""
    spec = NAMED.get(name_or_path)
    if spec is None:
        check_path(name_or_path)
        return Path(name_or_path)
    dest = datasets_dir / spec.name
    if dest.is_dir():
        return dest
    return fetch(spec, dest)


def check_path(name_or_path: str) -> None:
    """Refuse a --dataset that is neither a registered name nor a folder (missing, or a
    file): checked before any other work."""
    if name_or_path in NAMED:
        return
    path = Path(name_or_path)
    if path.exists() and not path.is_dir():
        raise DatasetError(f"--dataset {path} is a file; give the folder that holds one "
                           f"sub-folder of images per class{_example_root(path)}")
    if not path.is_dir():
        raise DatasetError(
            f"dataset folder not found: {path} (named datasets: {', '.join(NAMED)})"
        )


def _example_root(file: Path) -> str:
    """The dataset folder a file names when it lies in a class folder (root/class/file)."""
    return f", such as {file.parents[1]}" if len(file.parts) >= 3 else ""


def fetch(spec: NamedDataset, dest: Path) -> Path:
    """Download, verify, unpack and organize `spec` so that `dest` appears only when complete.

    The verified archive is kept beside `dest` (as `source.filename`) and reused by a later
    fetch, which is also how an archive downloaded by hand is picked up.
    """
    if spec.organize is None or not spec.sources:
        raise DatasetError(f"dataset {spec.name!r} not found at {dest}: {spec.hint(dest)}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    archive = _obtain(spec, dest)
    with tempfile.TemporaryDirectory(prefix=f".{dest.name}.", dir=dest.parent) as tmp:
        unpacked, out = Path(tmp) / "unpacked", Path(tmp) / "out"
        _extract(archive, unpacked)
        spec.organize(unpacked, out)
        os.rename(out, dest)
    return dest


def organize_flowers17(jpg_dir: Path, out: Path, *, link: bool = False) -> int:
    """Sort the Oxford `jpg/image_NNNN.jpg` files into `out/<class>/`; return the image count.

    Image k (1-based) belongs to class (k-1)//80. Files are copied, or symlinked with
    `link=True` (to build the named dataset from a read-only copy without duplicating it).
    `out` must not exist yet; it is built beside itself and renamed when complete.
    """
    numbered = sorted(
        (int(m.group(1)), path)
        for path in jpg_dir.iterdir()
        if (m := _FLOWER_IMAGE.fullmatch(path.name))
    )
    if not numbered:
        raise DatasetError(f"no image_NNNN.jpg files in {jpg_dir}")
    if out.exists():
        raise DatasetError(f"{out} already exists")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.", dir=out.parent) as tmp:
        build = Path(tmp) / out.name
        for number, path in numbered:
            index = (number - 1) // FLOWERS17_PER_CLASS
            if not 0 <= index < len(FLOWERS17_CLASSES):
                raise DatasetError(f"{path} is not one of the 1,360 flowers17 images")
            target = build / FLOWERS17_CLASSES[index] / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            if link:
                target.symlink_to(path.resolve())
            else:
                shutil.copy2(path, target)
        os.rename(build, out)
    return len(numbered)


def _organize_flowers17_archive(unpacked: Path, out: Path) -> None:
    jpg = unpacked / "jpg"
    if not jpg.is_dir():
        raise DatasetError("the flowers17 archive holds no jpg/ folder")
    organize_flowers17(jpg, out)


def _organize_caltech101(unpacked: Path, out: Path) -> None:
    """Take 101_ObjectCategories (from the nested tarball in the current zip, or directly
    from the old tarball) without BACKGROUND_Google, which is clutter, not a class."""
    categories = _find(unpacked, "101_ObjectCategories")
    if categories is None:
        nested = _find(unpacked, "101_ObjectCategories.tar.gz")
        if nested is not None:
            _extract(nested, unpacked / "nested")
            nested.unlink()
            categories = _find(unpacked / "nested", "101_ObjectCategories")
    if categories is None or not categories.is_dir():
        raise DatasetError("the caltech101 archive holds no 101_ObjectCategories folder")
    background = categories / "BACKGROUND_Google"
    if background.exists():
        shutil.rmtree(background)
    categories.rename(out)


def _find(root: Path, name: str) -> Path | None:
    """First path called `name` under `root`, ignoring macOS `__MACOSX` resource-fork junk."""
    return next((p for p in sorted(root.rglob(name)) if "__MACOSX" not in p.parts), None)


def _obtain(spec: NamedDataset, dest: Path) -> Path:
    """Return a verified archive, trying each source in order; one error lists every failure."""
    failures = []
    for source in spec.sources:
        archive = dest.parent / source.filename
        try:
            if archive.exists():
                _verify(archive, source)
            else:
                _download_verified(source, archive)
            return archive
        except DatasetError as exc:
            failures.append(str(exc))
    raise DatasetError(f"could not fetch {spec.name}: {'; '.join(failures)}; {spec.hint(dest)}")


def _download_verified(source: Source, archive: Path) -> None:
    """Download to `<archive>.part` and rename only once complete and verified."""
    part = archive.with_name(archive.name + ".part")
    try:
        _download(source.url, part)
        _verify(part, source)
        os.rename(part, archive)
    finally:
        part.unlink(missing_ok=True)


def _download(url: str, part: Path) -> None:
    """Stream `url` to `part` with a progress bar, turning network failures into one line."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response, part.open("wb") as f:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                      desc=part.name.removesuffix(".part"), disable=None) as bar:
                while chunk := response.read(CHUNK):
                    f.write(chunk)
                    bar.update(len(chunk))
    except (OSError, http.client.HTTPException) as exc:
        raise DatasetError(f"download failed: {url} ({_reason(exc)})") from exc


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__


def _verify(path: Path, source: Source) -> None:
    """Check the md5 of `path` against the pinned one; a mismatching file is deleted."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    actual = digest.hexdigest()
    if actual != source.md5:
        path.unlink()
        raise DatasetError(
            f"checksum mismatch for {source.filename} from {source.url}: expected md5 "
            f"{source.md5}, got {actual} (the file was deleted)"
        )


def _extract(archive: Path, into: Path) -> None:
    """Unpack a zip or tar archive into `into`, refusing any member that would land outside
    it (absolute paths, `..`) or that is not a plain file or folder (links, devices)."""
    into.mkdir(parents=True)
    root = into.resolve()
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for name in zf.namelist():
                    _check_inside(root, name, archive)
                zf.extractall(into)
        else:
            with tarfile.open(archive) as tf:
                for member in tf.getmembers():
                    _check_inside(root, member.name, archive)
                    if not (member.isfile() or member.isdir()):
                        raise DatasetError(f"unsafe member in {archive.name}: {member.name}")
                # The "data" filter (Python >= 3.10.12) is a second guard and fixes modes.
                kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                tf.extractall(into, **kwargs)
    except (tarfile.TarError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"cannot unpack {archive.name}: {exc}") from exc


def _check_inside(root: Path, name: str, archive: Path) -> None:
    if Path(name).is_absolute() or not (root / name).resolve().is_relative_to(root):
        raise DatasetError(f"unsafe member in {archive.name}: {name}")


CALTECH101 = NamedDataset(
    name="caltech101",
    sources=(
        Source(
            "https://data.caltech.edu/records/mzrjq-6wc02/files/caltech-101.zip?download=1",
            "caltech-101.zip",
            "3138e1922a9193bfa496528edbbc45d0",
        ),
        Source(
            "http://www.vision.caltech.edu/Image_Datasets/Caltech101/101_ObjectCategories.tar.gz",
            "101_ObjectCategories.tar.gz",
            "b224c7392d521a49829488ab0f1120d9",
        ),
    ),
    organize=_organize_caltech101,
    manual_hint=(
        "download {url} yourself and either save it as {archive} and rerun, or put the class "
        "folders of its 101_ObjectCategories (without BACKGROUND_Google) in {dest}/ "
        "(one folder per class)"
    ),
)
FLOWERS17 = NamedDataset(
    name="flowers17",
    sources=(
        Source(
            "https://www.robots.ox.ac.uk/~vgg/data/flowers/17/17flowers.tgz",
            "17flowers.tgz",
            "b59a65d8d1a99cd66944d474e1289eab",
        ),
    ),
    organize=_organize_flowers17_archive,
    manual_hint=(
        "download {url} yourself and save it as {archive} and rerun (it is then verified "
        "and sorted), or put its images in {dest}/ one folder per class (see datasets/README.md)"
    ),
)
ANIMALS = NamedDataset(
    name="animals",
    sources=(),
    organize=None,
    manual_hint=(
        "it has no public archive; put your images in {dest}/cats/, {dest}/dogs/ and "
        "{dest}/panda/ (one folder per class)"
    ),
)
NAMED: dict[str, NamedDataset] = {spec.name: spec for spec in (CALTECH101, FLOWERS17, ANIMALS)}
