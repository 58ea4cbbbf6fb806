"""Markdown of every report: tables, and report.md with its provenance footer.

grid(["mode", "T"], [["dense/sdpa", "1,024"]])        # cells already formatted
table(rows, ["arch", "n", "mean"], {"n": "runs"})     # dict rows, cells formatted here
write_report(folder / "report.md", "Title", sections, prov)
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any


def grid(head: Sequence[str], body: Iterable[Sequence[Any]]) -> str:
    """A GitHub markdown table of cells taken as they are (no trailing newline)."""
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in line) + " |" for line in body]
    return "\n".join(lines)


def cell(value: Any) -> str:
    """Floats to 4 decimals, integers with thousands separators, None as an empty cell."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    headers: Mapping[str, str] | None = None,
) -> str:
    """A markdown table of dict rows (cells as `cell` writes them), ending in a newline."""
    headers = headers or {}
    head = [headers.get(c, c) for c in columns]
    return grid(head, ([cell(row.get(c)) for c in columns] for row in rows)) + "\n"


def provenance_section(prov: Mapping[str, Any]) -> str:
    """The report's last section: where the numbers come from (read when the job started)."""
    rev = prov.get("revision", "unknown")
    dirty = " (uncommitted changes in the tree when it started)" if rev.endswith("-dirty") else ""
    lines = [
        "## How this was produced",
        "",
        f"- command: `{prov.get('command', '')}`",
        f"- git revision at the start: `{rev}`{dirty}",
        f"- machine: {prov.get('machine', '')}",
        f"- started: {prov.get('started', '')}; wall time "
        f"{prov.get('wall_minutes', float('nan')):.1f} min; load average "
        f"{prov.get('load_average_start', '')} at the start, "
        f"{prov.get('load_average_end', '')} at the end",
        "- raw data: `runs.csv` (one row per run), `positions.csv` where loss by position was "
        "measured, `design.json` (the design, the measured plan, this provenance); "
        "`inattn-report <this folder>` rebuilds this report from them",
        f"- report rendered: {time.strftime('%Y-%m-%d %H:%M %Z')}",
    ]
    return "\n".join(lines) + "\n"


def write_report(path: Path, title: str, sections: Sequence[str], prov: Mapping[str, Any]) -> Path:
    """report.md: the title, the non-empty sections in order, then the provenance footer."""
    body = "\n\n".join(s.strip() for s in sections if s.strip())
    path.write_text(f"# {title}\n\n{body}\n\n{provenance_section(prov)}")
    return path
