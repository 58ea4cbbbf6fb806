"""The frame every experiment report shares: what was run, where, on which revision, how long."""

from __future__ import annotations

import logging
import os
import shlex
import sys
import time
from pathlib import Path

from inattn.run_info import git_revision, machine

log = logging.getLogger(__name__)


def command_line() -> str:
    """The command as the user typed it (console-script name, then the overrides)."""
    return shlex.join(["inattn-reproduce", *sys.argv[1:]])


def log_summary_run(out: Path, tables: dict[str, list[dict]], mode: str = "offline") -> bool:
    """One W&B run per experiment report (group = the experiment): its tables and plots.

    Offline unless `mode` (or WANDB_MODE) says otherwise; a W&B failure only warns.
    """
    if os.environ.get("WANDB_MODE", mode) == "disabled":
        return False
    os.environ.setdefault("WANDB_SILENT", "true")
    try:
        import wandb

        run = wandb.init(
            project="inattn",
            group=out.name,
            name=f"{out.parent.name}-{out.name}-summary",
            job_type="report",
            dir=str(out),
            mode=os.environ.get("WANDB_MODE", mode),
            settings=wandb.Settings(init_timeout=60.0),
        )
        payload = {
            name: wandb.Table(
                columns=list(rows[0]), data=[[str(v) for v in r.values()] for r in rows]
            )
            for name, rows in tables.items()
            if rows
        }
        payload |= {png.stem: wandb.Image(str(png)) for png in sorted(out.glob("*.png"))}
        run.log(payload)
        run.finish()
    except Exception as err:  # W&B must never cost the report
        log.warning("W&B summary run failed (%s); the report is on disk", err)
        return False
    return True


def write_report(
    path: Path,
    title: str,
    body: str,
    started: float,
    tables: dict[str, list[dict]] | None = None,
) -> Path:
    """report.md: the findings first, then the exact command, revision, machine and wall time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    minutes = (time.perf_counter() - started) / 60
    text = (
        f"# {title}\n\n{body.strip()}\n\n## How this was produced\n\n"
        f"- command: `{command_line()}`\n- git revision: `{git_revision()}`\n"
        f"- machine: {machine()}\n- wall time: {minutes:.1f} min\n"
        f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}\n"
    )
    path.write_text(text)
    if tables:
        log_summary_run(path.parent, tables)
    return path


def provenance_section(prov: dict) -> str:
    """The report's last section: where the numbers come from (read when the run started)."""
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


def write_rendered(path: Path, title: str, sections: list[str], prov: dict) -> Path:
    """report.md from its sections and the provenance footer."""
    body = "\n\n".join(s.strip() for s in sections if s.strip())
    path.write_text(f"# {title}\n\n{body}\n\n{provenance_section(prov)}")
    return path


def new_figure(width: float = 6.4, height: float = 4.4, panels: int = 1):
    """A figure in the reports' one style (no pyplot state: safe in any process)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    axes = fig.subplots(1, panels, sharey=True, squeeze=False)[0]
    return fig, list(axes)


def save_figure(fig, axes, path: Path) -> None:
    """Grid and legend on every panel, then a PNG without a timestamp (rebuilds are identical)."""
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120, metadata={"Software": None})
