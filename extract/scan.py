"""Find the labelled images below a dataset root, in a stable order.

The order (class name, then relative path) is what makes resume and cache reuse
possible: the same folder always yields the same list, and the fingerprint of that
list says whether a cached feature file still describes the folder.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from common.errors import UserError

# TensorFlow decodes these itself; TIFF goes through PIL (extract.reader).
TF_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"})
PIL_EXTENSIONS = frozenset({".tif", ".tiff"})
IMAGE_EXTENSIONS = TF_EXTENSIONS | PIL_EXTENSIONS
# Image formats found in photo folders that neither decodes: counted and named, not read.
UNSUPPORTED_IMAGE_EXTENSIONS = frozenset({
    ".heic", ".heif", ".avif", ".jxl", ".jp2", ".j2k", ".svg", ".psd", ".ico", ".tga",
    ".ppm", ".pgm", ".pbm", ".raw", ".cr2", ".nef", ".arw", ".dng", ".orf", ".rw2",
})  # fmt: skip


class ScanError(UserError):
    """The dataset root cannot be used; the message names the folder."""


@dataclass(frozen=True)
class Scan:
    """The images of one dataset root: relative paths, label indices and class names."""

    root: Path
    paths: list[str]  # relative to root, '/'-separated
    labels: list[int]
    label_names: list[str]
    fingerprint: str
    stats: list[tuple[int, int]]  # (size, mtime_ns) per image: what says it is unchanged

    def __len__(self) -> int:
        return len(self.paths)

    def absolute(self, start: int = 0) -> list[str]:
        return [str(self.root / p) for p in self.paths[start:]]


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def _utf8(path: Path) -> bool:
    """Whether `path` is valid UTF-8; if not, warn (the file records names as UTF-8)."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        shown = os.fsencode(path).decode("utf-8", "backslashreplace")
        warnings.warn(f"{shown}: name is not valid UTF-8; ignored (rename it to include it)",
                      stacklevel=3)
        return False
    return True


def supported(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def skip_reason(path: str | os.PathLike) -> str:
    """Why a file named for reading was skipped: its format, or its content."""
    if supported(path):
        return "unreadable"
    return f"unsupported format; supported: {', '.join(sorted(IMAGE_EXTENSIONS))}"


def unsupported_message(paths: list[Path], where: Path) -> str:
    """'3 image files in X are in formats not read (.heic: 2, .svg: 1); supported: ...'."""
    counts: dict[str, int] = {}
    for path in paths:
        counts[path.suffix.lower()] = counts.get(path.suffix.lower(), 0) + 1
    found = ", ".join(f"{ext}: {n}" for ext, n in sorted(counts.items()))
    return (f"{len(paths)} image file(s) in {where} are in formats not read ({found}) and "
            f"were ignored; supported: {', '.join(sorted(IMAGE_EXTENSIONS))}")


def _layout_problem(root: Path, label_names: list[str]) -> str:
    """Why fewer than two classes were found, from what the folder does hold."""
    loose = [p for p in root.iterdir() if p.is_file() and not _is_hidden(p.name) and supported(p)]
    if not label_names and loose:
        return (f"{len(loose)} images directly in {root}; put them in one sub-folder per "
                f"class (e.g. {root / 'cat'}/, {root / 'dog'}/)")
    if len(label_names) == 1:
        single = root / label_names[0]
        inner = [d.name for d in sorted(single.iterdir())
                 if d.is_dir() and not _is_hidden(d.name) and find_images(d)]
        if len(inner) >= 2:
            return (f"{root}: found 1 class folder, {label_names[0]}/, which holds "
                    f"{len(inner)} sub-folders of images ({', '.join(inner[:3])}"
                    f"{', ...' if len(inner) > 3 else ''}); if those are the classes, "
                    f"point --dataset at {single}")
        return (f"{root}: found 1 class folder ({label_names[0]}/); need at least 2 "
                "(one sub-folder of images per class)")
    return (f"{root}: found no class folder with images; need at least 2 "
            "(one sub-folder of images per class)")


def find_images(folder: Path, unsupported: list[Path] | None = None) -> list[Path]:
    """Image files anywhere below `folder`, sorted, skipping hidden entries and link loops.

    Files of a known image format that cannot be read are appended to `unsupported`."""
    found: list[Path] = []
    seen_dirs: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        st = os.stat(dirpath)
        if (st.st_dev, st.st_ino) in seen_dirs:  # a symlink loop: walk each folder once
            dirnames[:] = []
            continue
        seen_dirs.add((st.st_dev, st.st_ino))
        dirnames[:] = sorted(d for d in dirnames if not _is_hidden(d))
        for name in sorted(filenames):
            if _is_hidden(name):
                continue
            if not supported(name):
                if unsupported is not None and Path(name).suffix.lower() in (
                        UNSUPPORTED_IMAGE_EXTENSIONS):
                    unsupported.append(Path(dirpath) / name)
                continue
            path = Path(dirpath) / name
            if path.is_file() and _utf8(path):
                found.append(path)
    return found


def file_stats(root: Path, paths: list[str]) -> list[tuple[int, int]]:
    """(size, mtime_ns) of each image: an image whose pair is unchanged keeps its row."""
    stats = []
    for rel in paths:
        st = os.stat(root / rel)
        stats.append((st.st_size, st.st_mtime_ns))
    return stats


def fingerprint(paths: list[str], stats: list[tuple[int, int]]) -> str:
    """Hash of sorted relative paths with sizes and mtimes: cheap, and any edit changes it."""
    digest = hashlib.sha256()
    for rel, (size, mtime_ns) in zip(paths, stats):
        digest.update(f"{rel}\0{size}\0{mtime_ns}\n".encode())
    return digest.hexdigest()


def scan(root: str | os.PathLike) -> Scan:
    """Scan a root holding one folder per class; class names sorted, labels their indices."""
    root = Path(root)
    if not root.exists():
        raise ScanError(f"dataset folder not found: {root}")
    if not root.is_dir():
        raise ScanError(f"dataset path is not a folder: {root}")
    class_dirs = sorted(
        (d for d in root.iterdir() if d.is_dir() and not _is_hidden(d.name) and _utf8(d)),
        key=lambda d: d.name,
    )
    paths: list[str] = []
    labels: list[int] = []
    label_names: list[str] = []
    unsupported: list[Path] = []
    for class_dir in class_dirs:
        images = find_images(class_dir, unsupported)
        if not images:
            warnings.warn(f"class folder {class_dir} holds no images; ignored", stacklevel=2)
            continue
        label = len(label_names)
        label_names.append(class_dir.name)
        for image in images:
            paths.append(image.relative_to(root).as_posix())
            labels.append(label)
    if unsupported:
        warnings.warn(unsupported_message(unsupported, root), stacklevel=2)
    if len(label_names) < 2:
        raise ScanError(
            _layout_problem(root, label_names)
        )
    stats = file_stats(root, paths)
    return Scan(root, paths, labels, label_names, fingerprint(paths, stats), stats)
