"""Plain-text tables for the console and benchmark reports (markdown ones: markdown.py)."""

from __future__ import annotations

from collections.abc import Sequence


def aligned(
    head: Sequence[str], body: Sequence[Sequence[str]], first_left: bool = False
) -> list[str]:
    """Lines of a table padded to column width, a rule under the head.

    Numbers read best right-aligned; the last column (a free-text note) is left as is, and with
    `first_left` the first column (a name) is left-aligned.
    """
    rows = [[str(x) for x in line] for line in [head, *body]]
    widths = [max(len(x) for x in col) for col in zip(*rows, strict=True)]
    lines = []
    for line in rows:
        cells = [x.rjust(w) for x, w in zip(line[:-1], widths, strict=False)]
        if first_left:
            cells[0] = line[0].ljust(widths[0])
        lines.append("  ".join([*cells, line[-1]]).rstrip())
    lines.insert(1, "-" * len(lines[0]))
    return lines
