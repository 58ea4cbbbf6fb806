"""A whole benchmark: run the grid, fit, plot, and write everything into one folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inattn.bench.fit import Fit, memory_fits
from inattn.bench.grid import Row, run_grid
from inattn.bench.plots import plot_memory, plot_speed
from inattn.bench.results import log_wandb, table_text, write_csv, write_json
from inattn.bench.spec import BenchSpec
from inattn.reporting.provenance import command_line, git_revision, local_time, machine

MEMORY_PNG = "memory_vs_context.png"
SPEED_PNG = "speed_vs_context.png"


@dataclass
class BenchResult:
    rows: list[Row]
    fits: list[Fit]
    files: dict[str, Path] = field(default_factory=dict)
    wandb_logged: bool = False

    @property
    def table(self) -> str:
        return table_text(self.rows, self.fits)


def run_info(spec: BenchSpec, command: str | None = None) -> dict[str, Any]:
    """results.json's head: the grid, then where the numbers come from."""
    return {
        "spec": spec.to_dict(),
        "git_revision": git_revision(),
        "date": local_time(),
        "command": command or command_line("inattn-bench"),
        "machine": machine(),
    }


def title_of(spec: BenchSpec) -> str:
    sizes = ", ".join(spec.sizes)
    what = "inference memory" if spec.measure == "memory" else "inference speed"
    pos = spec.model.get("position", "learned")
    return f"{what}: {sizes}, {spec.dtype}, device={spec.device}, {pos} positions, batch 1"


def run_bench(
    spec: BenchSpec,
    out_dir: Path,
    wandb: dict[str, Any] | None = None,
    progress: bool = True,
    command: str | None = None,
) -> BenchResult:
    """Measure `spec`, then write results.csv, results.json and the PNG into `out_dir`.

    wandb: {mode: offline|online|disabled, project, entity, init_timeout}; None: no W&B.
    """
    rows = run_grid(spec, progress)
    fits = memory_fits(rows, spec.fit_tail) if spec.measure == "memory" else []
    out_dir.mkdir(parents=True, exist_ok=True)
    result = BenchResult(rows, fits)
    result.files["csv"] = write_csv(rows, out_dir / "results.csv")
    result.files["json"] = write_json(rows, fits, run_info(spec, command), out_dir / "results.json")
    if spec.measure == "memory":
        png = plot_memory(rows, fits, out_dir / MEMORY_PNG, title_of(spec))
    else:
        png = plot_speed(rows, out_dir / SPEED_PNG, title_of(spec))
    result.files[png.stem] = png
    if wandb is not None:
        name = f"bench-{spec.measure}-{'-'.join(spec.sizes)}-{spec.device}-{spec.dtype}"
        images = {png.stem: png}
        result.wandb_logged = log_wandb(wandb, out_dir, name, spec.to_dict(), rows, fits, images)
    return result
