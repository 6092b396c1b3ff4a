"""The one base class of user errors, and one wording for system errors.

Every error that a user can fix (a bad option, a missing file, a malformed feature
file) derives from `UserError`, so each command catches that one class and prints its
message as one line. Imports nothing, so every command (and `--help`) can use it.
"""

from __future__ import annotations


class UserError(Exception):
    """An input the user can correct; the message names the file or option and the way out."""


def os_error_line(exc: OSError, fallback: object) -> str:
    """'<file>: <reason>' for an OSError; `fallback` names the file when the error does not."""
    return f"{exc.filename or fallback}: {exc.strerror or exc}"
