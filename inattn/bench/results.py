"""What a benchmark run leaves behind: results.csv, results.json, a text table, W&B records."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from inattn.bench.fit import Fit
from inattn.bench.grid import COLUMNS, Row
from inattn.reporting.text_table import aligned
from inattn.reporting.wandb_log import guarded_run, table
from inattn.run_info import write_json_atomic
from inattn.units import MiB


def write_csv(rows: Sequence[Row], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in row.to_dict().items()})
    return path


def write_json(rows: Sequence[Row], fits: Sequence[Fit], meta: dict[str, Any], path: Path) -> Path:
    data = {
        **meta,
        "rows": [r.to_dict() for r in rows],
        "fits": [vars(f) for f in fits],
    }
    write_json_atomic(path, data)
    return path


def _mib(n: int | None) -> str:
    return "" if n is None else f"{n / MiB:,.1f}"


def _num(x: float | None, fmt: str) -> str:
    return "" if x is None else format(x, fmt)


def table_text(rows: Sequence[Row], fits: Sequence[Fit] = ()) -> str:
    """The rows as an aligned text table (memory or speed columns, whichever were measured)."""
    speed = any(r.ttft_s is not None or r.decode_tok_s is not None for r in rows)
    cuda = any(r.cuda_peak_bytes is not None for r in rows)
    if speed:
        head = ["size", "mode", "T", "ttft s", "decode tok/s", "rounds", "note"]
        body = [
            [
                r.size,
                r.key,
                f"{r.context:,}",
                _num(r.ttft_s, ".4g"),
                _num(r.decode_tok_s, ".4g"),
                _num(r.repeats, "d"),
                r.note,
            ]
            for r in rows
        ]
    else:
        head = ["size", "mode", "T", "peak MiB", "peak-weights MiB", "state B/token"]
        head += ["cuda peak MiB"] if cuda else []
        head += ["note"]
        body = []
        for r in rows:
            line = [
                r.size,
                r.key,
                f"{r.context:,}",
                _mib(r.peak_bytes),
                _mib(r.activation_bytes),
                _num(r.state_bytes_per_token, ",.0f"),
            ]
            line += [_mib(r.cuda_peak_bytes)] if cuda else []
            body.append([*line, r.note])
    lines = aligned(head, body)  # numbers right-aligned, the note (last column) as is
    if fits:
        lines += ["", "fitted exponents of (peak - weights) vs T:"]
        for f in fits:
            span = "" if f.fitted_from is None else f" on T = {f.fitted_from:,}..{f.fitted_to:,}"
            lines.append(
                f"  {f.size} {f.key}: {_num(f.exponent, '.3f') or 'n/a'}{span}"
                f" (all {f.points} points: {_num(f.exponent_all, '.3f') or 'n/a'})"
            )
    return "\n".join(lines)


def log_wandb(
    wandb_cfg: dict[str, Any],
    run_dir: Path,
    name: str,
    config: dict[str, Any],
    rows: Sequence[Row],
    fits: Sequence[Fit],
    images: dict[str, Path],
) -> bool:
    """The table, the plots and the exponents to W&B (offline by default); False if it failed.

    A W&B failure never loses results: they are in results.csv and results.json already.
    """

    def fill(wandb: Any, run: Any) -> None:
        payload: dict[str, Any] = {"results": table(wandb, [r.to_dict() for r in rows], COLUMNS)}
        payload |= {key: wandb.Image(str(path)) for key, path in images.items()}
        run.log(payload)
        for f in fits:
            if f.exponent is not None:
                run.summary[f"exponent/{f.size}/{f.key}"] = f.exponent

    return guarded_run(
        fill,
        mode=wandb_cfg.get("mode", "offline"),
        results_at="results are in the run folder",
        init_timeout=float(wandb_cfg.get("init_timeout", 60)),
        project=wandb_cfg.get("project", "inattn"),
        entity=wandb_cfg.get("entity"),
        dir=str(run_dir),
        name=name,
        job_type="bench",
        config=config,
    )
