"""Text for the terminal: aligned tables, "did you mean" suggestions, time summaries.

One table renderer serves every listing (backbones, the feature cache, the search's
candidates, `classify --history`, the benchmarks), so they all align the same way.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable, Mapping, Sequence


def table(rows: Iterable[Sequence[str]], header: Sequence[str] | None = None, *,
          rule: bool = False, right: Collection[int] = ()) -> list[str]:
    """Rows of cells as aligned lines, columns two spaces apart.

    Parameters
    ----------
    rows : rows of cells, each row as long as the header.
    header : column names, printed first (None: no header line).
    rule : a line of dashes under the header, under each named column.
    right : the columns aligned right (numbers); the others align left.

    Returns
    -------
    The lines, without trailing spaces.
    """
    body = [list(row) for row in rows]
    lines_in = ([list(header)] if header is not None else []) + body
    if not lines_in:
        return []
    widths = [max(len(line[i]) for line in lines_in) for i in range(len(lines_in[0]))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell.rjust(width) if i in right else cell.ljust(width)
                         for i, (cell, width) in enumerate(zip(cells, widths))).rstrip()

    out = [line(cells) for cells in lines_in]
    if header is not None and rule:
        out.insert(1, "  ".join(("-" if name else " ") * width
                                for name, width in zip(header, widths)))
    return out


def did_you_mean(name: str, choices: Iterable[str], aliases: Mapping[str, str] | None = None
                 ) -> str:
    """'did you mean X or Y? ' for the closest of `choices` to a misspelt name, or to
    another name of the same thing (`aliases`, compared without case, '-', '_' or
    spaces); '' when none is close."""
    plain = "".join(ch for ch in name.lower() if ch not in "-_ ")
    if aliases and plain in aliases:
        return f"did you mean {aliases[plain]}? "
    close = difflib.get_close_matches(name.lower(), list(choices), n=2)
    return f"did you mean {' or '.join(close)}? " if close else ""


def timings(total: float, startup: float, working: float, images: int, stage: str) -> str:
    """Where a run's time went, with the rate of its own work (start-up left out, so it
    is the rate its progress bar showed): extract's and predict's summaries."""
    rate = images / working if working > 0 else 0.0
    return (f"{total:.1f} s: start-up {startup:.1f} s, {stage} {working:.1f} s at "
            f"{rate:.1f} images/s")
