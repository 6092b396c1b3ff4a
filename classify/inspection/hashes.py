"""Exact copies: images whose files hold the same bytes, by SHA-256 of their content."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1 << 20


@dataclass
class Hashes:
    """The content hash of every row whose image could be read (None where not)."""

    digests: list[str | None]

    @property
    def unreadable(self) -> list[int]:
        return [row for row, digest in enumerate(self.digests) if digest is None]

    def copies(self) -> list[list[int]]:
        """Groups of rows (two or more) whose files are byte for byte the same."""
        by_digest: dict[str, list[int]] = {}
        for row, digest in enumerate(self.digests):
            if digest is not None:
                by_digest.setdefault(digest, []).append(row)
        return sorted((rows for rows in by_digest.values() if len(rows) > 1),
                      key=lambda rows: rows[0])


def file_digest(path: Path) -> str | None:
    """SHA-256 of a file's bytes, or None when it cannot be read (moved, removed)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def hash_images(root: Path | None, paths: Sequence[str]) -> Hashes:
    """The content hash of every image, its path taken relative to `root` (the folder
    the features were extracted from); with no root, nothing can be read."""
    if root is None:
        return Hashes([None] * len(paths))
    return Hashes([file_digest(root / relative) for relative in paths])
