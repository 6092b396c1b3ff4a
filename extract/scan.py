"""Find the labelled images below a dataset root, in a stable order.

The order (class name, then relative path) is what makes resume and cache reuse
possible: the same folder always yields the same list, and the fingerprint of that
list says whether a cached feature file still describes the folder.

Two layouts are read here: one folder per class, and split folders (train/, val/,
test/ under any of their usual names), each holding one folder per class; the
second gives every image its split. A flat folder with a label file is
extract.labels' to read.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from common.errors import UserError
from extract.featurefile import SPLITS

# TensorFlow decodes these itself; TIFF goes through PIL (extract.reader).
TF_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"})
PIL_EXTENSIONS = frozenset({".tif", ".tiff"})
IMAGE_EXTENSIONS = TF_EXTENSIONS | PIL_EXTENSIONS
# Image formats found in photo folders that neither decodes: counted and named, not read.
UNSUPPORTED_IMAGE_EXTENSIONS = frozenset({
    ".heic", ".heif", ".avif", ".jxl", ".jp2", ".j2k", ".svg", ".psd", ".ico", ".tga",
    ".ppm", ".pgm", ".pbm", ".raw", ".cr2", ".nef", ".arw", ".dng", ".orf", ".rw2",
})


# Split folder names (matched case-insensitively) and the split each one gives.
SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val",
               "validation": "val", "test": "test", "testing": "test"}
SPLIT_FROM_FOLDERS = "folders"


class ScanError(UserError):
    """The dataset root cannot be used; the message names the folder."""


class NotADatasetError(ScanError):
    """--dataset names no dataset folder: a path that is missing or a file, a folder of
    loose images, or a folder above dataset folders. The command line's fault (a usage
    error), where a ScanError of a dataset folder is its content's."""


@dataclass(frozen=True)
class LabelFile:
    """The label file that gave a scan its labels, as the feature file's identity has it."""

    path: str  # resolved
    sha256: str  # of its content: an edited label list makes a new feature file
    columns: str  # the header names read: "path,label" or "path,label,split"

    def identity(self) -> dict[str, str]:
        return {"labels_sha256": self.sha256, "labels_columns": self.columns}


@dataclass(frozen=True)
class Scan:
    """The images of one dataset root: relative paths, label indices and class names."""

    root: Path
    paths: list[str]  # relative to root, '/'-separated
    labels: list[int]
    label_names: list[str]
    fingerprint: str
    stats: list[tuple[int, int]]  # (size, mtime_ns) per image: what says it is unchanged
    split: list[str] | None = None  # train, val or test per image, where a split was given
    split_source: str | None = None  # "folders", or the label file that gave the split
    label_file: LabelFile | None = None  # where a label file gave the labels

    def __len__(self) -> int:
        return len(self.paths)

    def split_counts(self) -> dict[str, int]:
        """Images per split, in the order train, val, test (empty without a split)."""
        if self.split is None:
            return {}
        return {name: self.split.count(name) for name in SPLITS if name in self.split}

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


def _layout_problem(root: Path, label_names: list[str],
                    inner: dict[str, list[str]]) -> ScanError:
    """Why fewer than two classes were found, from what the folder does hold; `inner`:
    each class folder's sub-folders of images (see _image_folders)."""
    loose = [p for p in root.iterdir() if p.is_file() and not _is_hidden(p.name) and supported(p)]
    if not label_names and loose:
        return NotADatasetError(
            f"{len(loose)} images directly in {root}; put them in one sub-folder per "
            f"class (e.g. {root / 'cat'}/, {root / 'dog'}/)")
    if len(label_names) == 1:
        single = root / label_names[0]
        held = inner[label_names[0]]
        if len(held) >= 2:
            return NotADatasetError(
                f"{root}: found 1 class folder, {label_names[0]}/, which holds "
                f"{len(held)} sub-folders of images ({', '.join(held[:3])}"
                f"{', ...' if len(held) > 3 else ''}); if those are the classes, "
                f"point --dataset at {single}")
        return ScanError(f"{root}: found 1 class folder ({label_names[0]}/); need at least 2 "
                         "(one sub-folder of images per class)")
    return NotADatasetError(f"{root}: found no class folder with images; need at least 2 "
                            "(one sub-folder of images per class)")


def _image_folders(class_dir: Path, images: list[Path]) -> list[str]:
    """The sub-folders of `class_dir` that its images lie in, by name; none where an
    image lies directly in it."""
    if any(image.parent == class_dir for image in images):
        return []
    return sorted({image.relative_to(class_dir).parts[0] for image in images})


def _dataset_folders(root: Path, inner: dict[str, list[str]]) -> NotADatasetError | None:
    """The refusal of a folder whose every class folder holds two or more sub-folders of
    images and no image of its own, as dataset folders do: a folder above datasets."""
    if not all(len(held) >= 2 for held in inner.values()):
        return None
    names = [f"{name}/" for name in inner]
    shown = (f"{', '.join(names[:-1])} and {names[-1]}" if len(names) <= 3
             else f"{', '.join(names[:3])}, ...")
    return NotADatasetError(
        f"{root}: found {len(names)} class folders, {shown}, which each hold sub-folders of "
        f"images, as dataset folders do; point --dataset at one of them, such as "
        f"{root / next(iter(inner))}")


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


def split_name(folder: str) -> str | None:
    """The split a folder's name gives (train, val or test), or None for any other name."""
    return SPLIT_NAMES.get(folder.lower())


def check_root(root: Path) -> None:
    """Refuse a dataset root that is missing or not a folder."""
    if not root.exists():
        raise NotADatasetError(f"dataset folder not found: {root}")
    if not root.is_dir():
        raise NotADatasetError(f"dataset path is not a folder: {root}")


def _sub_folders(folder: Path) -> list[Path]:
    """The folders directly in `folder`, by name, hidden ones and non-UTF-8 names left out."""
    return sorted(
        (d for d in folder.iterdir() if d.is_dir() and not _is_hidden(d.name) and _utf8(d)),
        key=lambda d: d.name,
    )


def _named(folders: list[Path]) -> str:
    return ", ".join(f"{d.name}/" for d in folders)


def scan(root: str | os.PathLike) -> Scan:
    """Scan a root holding one folder per class, or split folders of class folders;
    class names sorted, labels their indices."""
    root = Path(root)
    check_root(root)
    class_dirs = _sub_folders(root)
    split_dirs = [d for d in class_dirs if split_name(d.name)]
    if split_dirs:
        return _scan_splits(root, split_dirs, [d for d in class_dirs if d not in split_dirs])
    paths: list[str] = []
    labels: list[int] = []
    label_names: list[str] = []
    unsupported: list[Path] = []
    inner: dict[str, list[str]] = {}  # class name -> its sub-folders of images
    for class_dir in class_dirs:
        images = find_images(class_dir, unsupported)
        if not images:
            warnings.warn(f"class folder {class_dir} holds no images; ignored", stacklevel=2)
            continue
        label = len(label_names)
        label_names.append(class_dir.name)
        inner[class_dir.name] = _image_folders(class_dir, images)
        for image in images:
            paths.append(image.relative_to(root).as_posix())
            labels.append(label)
    if unsupported:
        warnings.warn(unsupported_message(unsupported, root), stacklevel=2)
    if len(label_names) < 2:
        raise _layout_problem(root, label_names, inner)
    above = _dataset_folders(root, inner)
    if above is not None:
        raise above
    stats = file_stats(root, paths)
    return Scan(root, paths, labels, label_names, fingerprint(paths, stats), stats)


def _split_classes(folder: Path, split: str, unsupported: list[Path]) -> dict[str, list[Path]]:
    """Class name -> images of one split folder; an empty split is refused."""
    classes = {d.name: find_images(d, unsupported) for d in _sub_folders(folder)}
    classes = {name: images for name, images in classes.items() if images}
    if classes:
        return classes
    loose = [p for p in folder.iterdir() if p.is_file() and not _is_hidden(p.name) and supported(p)]
    if loose:
        raise ScanError(f"{folder}: {len(loose)} images directly in the {split} split folder; "
                        f"put them in one sub-folder per class ({folder / 'cat'}/, ...), or "
                        "give their labels with --labels FILE.csv")
    raise ScanError(f"{folder}: the {split} split folder holds no images; put one sub-folder "
                    "of images per class in it, or remove it")


def _scan_splits(root: Path, split_dirs: list[Path], others: list[Path]) -> Scan:
    """A root of split folders (train/, val/, test/), each holding one folder per class:
    the classes are the union over the splits, and every image keeps its split."""
    mixed = [d for d in others if find_images(d)]
    if mixed:
        raise ScanError(f"{root}: holds split folders ({_named(split_dirs)}) and class folders "
                        f"({_named(mixed)}) side by side; move every class folder into a split "
                        "folder, or point --dataset at a folder that holds one kind")
    folder_of: dict[str, Path] = {}
    for folder in split_dirs:
        split = split_name(folder.name)
        assert split is not None
        if split in folder_of:
            raise ScanError(f"{root}: {folder_of[split].name}/ and {folder.name}/ are both the "
                            f"{split} split; merge them into one folder")
        folder_of[split] = folder
    unsupported: list[Path] = []
    found = {split: _split_classes(folder_of[split], split, unsupported)
             for split in SPLITS if split in folder_of}
    label_names = sorted(set().union(*found.values()))
    if len(label_names) < 2:
        raise ScanError(f"{root}: the split folders hold 1 class ({label_names[0]}/); need at "
                        "least 2 (one sub-folder of images per class in each split folder)")
    for split, classes in found.items():
        absent = [name for name in label_names if name not in classes]
        if absent:
            warnings.warn(f"{folder_of[split]}: the {split} split has no images of "
                          f"{len(absent)} class(es): {', '.join(absent)}", stacklevel=3)
    if unsupported:
        warnings.warn(unsupported_message(unsupported, root), stacklevel=3)
    paths: list[str] = []
    labels: list[int] = []
    splits: list[str] = []
    for split, classes in found.items():
        for name in sorted(classes):
            for image in classes[name]:
                paths.append(image.relative_to(root).as_posix())
                labels.append(label_names.index(name))
                splits.append(split)
    stats = file_stats(root, paths)
    return Scan(root, paths, labels, label_names, fingerprint(paths, stats), stats, splits,
                SPLIT_FROM_FOLDERS)
