"""What an experiment leaves beside its report, so the report can be rebuilt from it alone.

    experiments/<preset>/<experiment>/
        design.json     the pre-registered design (from the preset, before any training), the
                        measured plan, and provenance: revision and command read at the start
        runs.csv        one row per run (RUN_COLUMNS first, then the experiment's own columns)
        positions.csv   loss by position bucket of every evaluated run, where measured
        report.md, *.png  written from the three files above by the experiment's `render`

`inattn-report <that folder>` calls `render` again: the same files give the same report, byte
for byte apart from the line that dates the rendering.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from inattn.errors import DataError
from inattn.run_info import write_atomic

DESIGN_FILE, RUNS_FILE, POSITIONS_FILE = "design.json", "runs.csv", "positions.csv"

# Every experiment's runs.csv starts with these (empty where a column does not apply).
RUN_COLUMNS = (
    "experiment",
    "route",
    "arch",
    "variant",
    "size",
    "seed",
    "params",
    "tokens",
    "flops",
    "train_context",
    "eval_context",
    "memory_bytes",
    "val_loss",
)
POSITION_COLUMNS = ("route", "variant", "size", "seed", "first", "last", "loss")


def write_design(folder: Path, design: Mapping[str, Any]) -> None:
    text = json.dumps(design, indent=1, default=str) + "\n"  # key order is table order
    write_atomic(Path(folder) / DESIGN_FILE, lambda f: f.write(text))


def read_design(folder: Path) -> dict[str, Any]:
    path = Path(folder) / DESIGN_FILE
    if not path.is_file():
        raise DataError("folder", f"no {DESIGN_FILE} in {folder}: not an experiment folder")
    return json.loads(path.read_text())


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # shortest text that reads back as the same float
    return str(value)


def write_rows(path: Path, rows: Iterable[Mapping[str, Any]], first: Sequence[str]) -> None:
    """A CSV with the `first` columns, then any others in order of appearance."""
    rows = list(rows)
    columns = list(first)
    for row in rows:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    text = buf.getvalue()
    write_atomic(Path(path), lambda f: f.write(text))


def _parse(text: str) -> Any:
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows with numbers as int or float and empty cells as None."""
    path = Path(path)
    if not path.is_file():
        raise DataError("folder", f"no {path.name} in {path.parent}")
    with open(path, newline="") as f:
        return [{k: _parse(v) for k, v in row.items()} for row in csv.DictReader(f)]


def load(folder: Path) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """(design.json, runs.csv rows, positions.csv rows or []) of an experiment folder."""
    folder = Path(folder)
    positions = folder / POSITIONS_FILE
    return (
        read_design(folder),
        read_rows(folder / RUNS_FILE),
        read_rows(positions) if positions.is_file() else [],
    )
