"""One wording for system errors, shared by `extract`, `classify` and `predict`.

Imports nothing, so every command (and `--help`) can use it at no cost.
"""

from __future__ import annotations


def os_error_line(exc: OSError, fallback: object) -> str:
    """'<file>: <reason>' for an OSError; `fallback` names the file when the error does not."""
    return f"{exc.filename or fallback}: {exc.strerror or exc}"
