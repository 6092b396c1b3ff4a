"""Labels from a file: a CSV or TSV naming each image, its class and, optionally, its split.

The layout of many public image sets: one flat folder of images (`images/`) and a
label list beside it. Each row names an image relative to the dataset root, or by its
id (the file's name without extension); the columns are found among their usual names
or named by the user. Rows naming files that are not there are listed and skipped, as
unreadable images are; anything that makes the labels ambiguous is refused in one line
naming the file and the line. The file's sha256 joins the feature file's identity, so
an edited label list makes a new feature file.
"""

from __future__ import annotations

import csv
import hashlib
import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from extract.scan import (
    IMAGE_EXTENSIONS,
    SPLIT_NAMES,
    UNSUPPORTED_IMAGE_EXTENSIONS,
    LabelFile,
    Scan,
    ScanError,
    check_root,
    file_stats,
    find_images,
    fingerprint,
    split_name,
    supported,
    unsupported_message,
)

# Column names recognised (case, spaces, "_" and "-" ignored), the first found wins.
PATH_COLUMNS = ("path", "file", "filename", "image", "id")
LABEL_COLUMNS = ("label", "class", "category")
SPLIT_COLUMNS = ("split",)
DELIMITERS = ("\t", ",", ";")
COLUMNS_OPTION = "--labels-columns PATH,LABEL[,SPLIT]"
SHOWN_ROWS = 5  # missing files named in the warning; the rest are counted


class LabelFileError(ScanError):
    """A label file that cannot be read as labels; the message names the file and line."""


@dataclass(frozen=True)
class Columns:
    """The header names of the path, label and (optional) split columns."""

    path: str
    label: str
    split: str | None = None


@dataclass(frozen=True)
class Row:
    """One image of the label file: its line, the name it was given, label and split."""

    line: int
    name: str
    label: str
    split: str | None


def _key(name: str) -> str:
    """A header cell as it is matched: lower case, without spaces, "_" or "-"."""
    return "".join(ch for ch in name.lower() if ch not in " _-")


def parse_columns(value: str) -> tuple[str, ...]:
    """--labels-columns: 'path,label' or 'path,label,split' (header names)."""
    names = tuple(part.strip() for part in value.split(","))
    if len(names) not in (2, 3) or not all(names):
        raise LabelFileError(f"--labels-columns {value}: give PATH,LABEL or PATH,LABEL,SPLIT "
                             "(the header names of those columns)")
    return names


def _read_table(file: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the non-blank rows (with their line numbers) of a CSV or TSV."""
    try:
        text = file.read_text(encoding="utf-8-sig")  # a spreadsheet's byte-order mark
    except UnicodeDecodeError:
        raise LabelFileError(f"{file}: not UTF-8 text; save the label list as UTF-8 CSV") \
            from None
    first = text.split("\n", 1)[0]
    if not first.strip():
        raise LabelFileError(f"{file}: no header row; the first line names the columns "
                             "(e.g. path,label or path,label,split)")
    reader = csv.reader(io.StringIO(text), delimiter=max(DELIMITERS, key=first.count))
    header = [cell.strip() for cell in next(reader)]
    # line_num: the file's line where the row ends (a quoted value may span lines).
    rows = [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
    return header, rows


def _find_column(header: list[str], wanted: Sequence[str]) -> str | None:
    keys = {_key(name): name for name in reversed(header)}  # the first of equal keys wins
    return next((keys[key] for key in wanted if key in keys), None)


def find_columns(file: Path, header: list[str], named: Sequence[str] | None) -> Columns:
    """The columns named with --labels-columns, or found among the usual names."""
    if named:
        missing = [name for name in named if _find_column(header, [_key(name)]) is None]
        if missing:
            raise LabelFileError(f"{file}: no column {', '.join(map(repr, missing))} (its "
                                 f"columns: {', '.join(header)}); check --labels-columns")
        found = [_find_column(header, [_key(name)]) for name in named]
        return Columns(str(found[0]), str(found[1]), found[2] if len(found) > 2 else None)
    path = _find_column(header, PATH_COLUMNS)
    label = _find_column(header, LABEL_COLUMNS)
    if path is None or label is None:
        lacking = [what for what, column in (("path", path), ("label", label)) if column is None]
        raise LabelFileError(
            f"{file}: no {' or '.join(lacking)} column among its columns "
            f"({', '.join(header) or 'none'}); name the path column "
            f"{'|'.join(PATH_COLUMNS)} and the label column {'|'.join(LABEL_COLUMNS)}, or "
            f"give {COLUMNS_OPTION}")
    return Columns(path, label, _find_column(header, SPLIT_COLUMNS))


def _rows(file: Path, named: Sequence[str] | None) -> tuple[list[Row], Columns]:
    """Every row of the label file, checked: a name, a label, and a known split."""
    header, table = _read_table(file)
    columns = find_columns(file, header, named)
    at = {name: header.index(name) for name in (columns.path, columns.label, columns.split)
          if name is not None}
    rows = []
    for line, cells in table:
        if len(cells) <= max(at.values()):
            raise LabelFileError(f"{file} line {line}: {len(cells)} value(s), but the "
                                 f"header names {len(header)} columns")
        name, label = cells[at[columns.path]].strip(), cells[at[columns.label]].strip()
        if not name:
            raise LabelFileError(f"{file} line {line}: no {columns.path}; give every row "
                                 "its image")
        if not label:
            raise LabelFileError(f"{file} line {line}: no {columns.label} for {name}; label "
                                 "every row (predict labels images without one)")
        split = None
        if columns.split is not None:
            given = cells[at[columns.split]].strip()
            split = split_name(given)
            if split is None:
                raise LabelFileError(
                    f"{file} line {line}: {columns.split} {given!r} is not one of "
                    f"{', '.join(SPLIT_NAMES)}; correct it, or leave the column out with "
                    f"--labels-columns {columns.path},{columns.label}")
        rows.append(Row(line, name, label, split))
    if not rows:
        raise LabelFileError(f"{file}: a header and no rows; add one row per image")
    return rows, columns


class _Images:
    """The image files below the root, found by relative path or by id (a stem)."""

    def __init__(self, root: Path):
        self.root = root
        self.files = [p.relative_to(root).as_posix() for p in find_images(root)]
        self.by_stem: dict[str, list[str]] = {}
        for rel in self.files:
            stem = PurePosixPath(rel).with_suffix("").as_posix()
            self.by_stem.setdefault(stem, []).append(rel)
            name_stem = PurePosixPath(rel).stem
            if name_stem != stem:
                self.by_stem.setdefault(name_stem, []).append(rel)

    def find(self, name: str, file: Path, line: int) -> str | None:
        """The relative path a row names, or None when no such file is there."""
        rel = PurePosixPath(name.replace("\\", "/"))
        if rel.is_absolute():
            try:
                rel = PurePosixPath(Path(rel).resolve().relative_to(self.root.resolve()))
            except ValueError:
                return None
        text = rel.as_posix()
        if (self.root / text).is_file():
            return text
        if rel.suffix.lower() in IMAGE_EXTENSIONS | UNSUPPORTED_IMAGE_EXTENSIONS:
            return None
        matches = self.by_stem.get(text, [])
        if len(matches) > 1:
            raise LabelFileError(f"{file} line {line}: id {name!r} matches {len(matches)} "
                                 f"files ({', '.join(matches[:3])}); name the file with its "
                                 "extension")
        return matches[0] if matches else None


def _checked(file: Path, root: Path, rows: list[Row], columns: Columns
             ) -> tuple[dict[str, Row], list[Row], list[str]]:
    """Each image once (path -> row), the rows naming files not there, and the files in a
    format not read."""
    images = _Images(root)
    kept: dict[str, Row] = {}
    missing: list[Row] = []
    unreadable: list[str] = []
    for row in rows:
        rel = images.find(row.name, file, row.line)
        if rel is None:
            missing.append(row)
            continue
        if not supported(rel):
            unreadable.append(rel)
            continue
        first = kept.get(rel)
        if first is None:
            kept[rel] = row
        elif (first.label, first.split) != (row.label, row.split):
            what = (f"{columns.label} {row.label!r} (line {first.line}: {first.label!r})"
                    if first.label != row.label
                    else f"split {row.split!r} (line {first.line}: {first.split!r})")
            raise LabelFileError(f"{file} line {row.line}: {rel} is listed again with "
                                 f"{what}; keep one of its rows")
    unlisted = len(set(images.files) - set(kept))
    if unlisted:
        warnings.warn(f"{unlisted} image(s) in {root} are not in {file.name}; left out",
                      stacklevel=3)
    return kept, missing, unreadable


def _check_groups(file: Path, root: Path, rows: list[Row], kept: dict[str, Row]) -> None:
    """Refuse a label or a split whose every row names a file that is not there."""
    if not kept:
        raise LabelFileError(f"{file}: none of its {len(rows)} rows names an image in {root} "
                             f"(line {rows[0].line}: {rows[0].name}); paths are relative to "
                             "--dataset")
    for what, of in (("label", lambda row: row.label), ("split", lambda row: row.split)):
        present = {of(row) for row in kept.values()}
        for row in rows:
            value = of(row)
            if value is not None and value not in present:
                count = sum(of(other) == value for other in rows)
                raise LabelFileError(
                    f"{file}: {what} {value!r} has no images: its {count} row(s) name files "
                    f"not in {root} (line {row.line}: {row.name}); correct the paths, or "
                    "remove those rows")


def scan_labelled(root: str | Path, file: str | Path,
                  columns: Sequence[str] | None = None) -> Scan:
    """The images a label file names below `root`, with its labels (sorted class names)
    and, where it has a split column, its split."""
    root, file = Path(root), Path(file)
    check_root(root)
    try:
        content = file.read_bytes()
    except OSError as exc:
        raise LabelFileError(f"{file}: cannot read the label file ({exc.strerror or exc})") \
            from None
    rows, found = _rows(file, columns)
    kept, missing, unreadable = _checked(file, root, rows, found)
    _check_groups(file, root, rows, kept)
    if missing:
        shown = ", ".join(f"line {row.line} ({row.name})" for row in missing[:SHOWN_ROWS])
        more = f" and {len(missing) - SHOWN_ROWS} more" if len(missing) > SHOWN_ROWS else ""
        warnings.warn(f"{file}: {len(missing)} row(s) name files not in {root}, skipped: "
                      f"{shown}{more}", stacklevel=2)
    if unreadable:
        warnings.warn(unsupported_message([Path(p) for p in unreadable], root), stacklevel=2)
    label_names = sorted({row.label for row in kept.values()})
    if len(label_names) < 2:
        raise LabelFileError(f"{file}: 1 label ({label_names[0]}) among its rows; need at "
                             "least 2 classes")
    paths = sorted(kept, key=lambda rel: (kept[rel].label, rel))
    stats = file_stats(root, paths)
    split = [str(kept[rel].split) for rel in paths] if found.split else None
    source = LabelFile(str(file.resolve()), hashlib.sha256(content).hexdigest(),
                       ",".join(name for name in (found.path, found.label, found.split) if name))
    return Scan(root, paths, [label_names.index(kept[rel].label) for rel in paths],
                label_names, fingerprint(paths, stats), stats, split,
                source.path if split else None, source)
