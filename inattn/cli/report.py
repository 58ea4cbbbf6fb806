"""inattn-report: tables and plots from finished runs (their metrics.json files, or W&B)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from inattn.cli.app import EXIT_BAD_INPUT
from inattn.errors import ConfigError, UserError

EXAMPLES = """\
examples:
  inattn-report outputs/multirun/2025-01-01/12-00-00
  inattn-report outputs --by arch,size --metric val_loss --out reports/sizes
  inattn-report --wandb-group equal_vram --wandb-project inattn --out reports/equal_vram

An experiment folder (experiments/<preset>/<experiment>, with design.json and runs.csv) gets its
own report rebuilt from those files alone:
  inattn-report experiments/cpu/equal_vram

Otherwise every metrics.json below FOLDER is one run (an inattn-train run folder). Runs that have
not finished, and unreadable metrics.json files, are left out and listed in report.md. Runs are
grouped by the --by fields; each row gives the number of runs (seeds), the mean and the sample
standard deviation of --metric, and the parameter count.
"""


def fail(message: str) -> None:
    """As `inattn.cli.app.fail`, without importing torch and Hydra, so errors come at once."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(EXIT_BAD_INPUT)


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line and exit 2, like the other commands
        fail(message)


def parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="inattn-report",
        description="Write report.md (a markdown table) and PNG plots from finished runs.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "folder", nargs="?", type=Path, help="folder searched recursively for metrics.json files"
    )
    p.add_argument(
        "--out", type=Path, metavar="DIR", help="where report.md and the PNGs go (default: FOLDER)"
    )
    p.add_argument(
        "--by",
        default="arch,size,context_length",
        metavar="FIELDS",
        help="comma-separated fields that define a group (default: %(default)s)",
    )
    p.add_argument(
        "--metric",
        default="val_loss",
        metavar="FIELD",
        help="metrics.json field to summarise (default: %(default)s)",
    )
    wb = p.add_argument_group("W&B (instead of FOLDER; needs W&B online and a login)")
    wb.add_argument("--wandb-group", metavar="NAME", help="read the finished runs of this group")
    wb.add_argument(
        "--wandb-project",
        default="inattn",
        metavar="NAME",
        help="W&B project (default: %(default)s)",
    )
    wb.add_argument("--wandb-entity", metavar="NAME", help="team or user (default: your own)")
    return p


def fields(text: str) -> tuple[str, ...]:
    keys = tuple(k.strip() for k in text.split(",") if k.strip())
    if not keys:
        raise ConfigError("by", "give at least one field, e.g. --by arch,size")
    return keys


def rebuild_experiment(folder: Path) -> Path:
    """An experiment folder (design.json + runs.csv): its own report, rebuilt from those files."""
    import importlib
    import json

    from inattn.errors import DataError

    try:
        name = json.loads((folder / "design.json").read_text())["experiment"]
        module = importlib.import_module(f"inattn.experiments.{name}")
    except (OSError, ValueError, KeyError, ModuleNotFoundError) as err:
        raise DataError(
            "folder", f"{folder / 'design.json'} is not an experiment design: {err}"
        ) from None
    return module.render(folder)


def build(args: argparse.Namespace) -> str:
    """Write the report; returns the table."""
    # matplotlib only once the command line is known good
    from inattn.reporting import markdown, runs_summary

    by = fields(args.by)
    if args.wandb_group:
        runs, skipped = runs_summary.wandb_runs(
            args.wandb_project, args.wandb_group, args.wandb_entity
        )
        source = f"W&B project `{args.wandb_project}`, group `{args.wandb_group}`"
        out = args.out or args.folder or Path(".")
    else:
        runs, skipped = runs_summary.scan_runs(args.folder)
        source = f"`{args.folder}`"
        out = args.out or args.folder
    if not runs:
        where = f"group {args.wandb_group!r}" if args.wandb_group else str(args.folder)
        raise UserError("folder", f"no finished runs (metrics.json) found in {where}")

    rows = runs_summary.summarise(runs, by, args.metric)
    columns = [*by, *(["params"] if "params" not in by else []), "n", "mean", "std"]
    headers = {"mean": f"{args.metric} mean", "std": f"{args.metric} std", "n": "runs"}
    table = markdown.table(rows, columns, headers)

    out.mkdir(parents=True, exist_ok=True)
    plot = runs_summary.plot_metric_vs_params(
        rows, out / f"{args.metric}_vs_params.png", by, args.metric
    )
    parts: list[Any] = [
        f"# {args.metric} by {', '.join(by)}\n",
        f"{len(runs)} finished runs from {source}; std is the sample standard deviation over "
        "the runs of a group (0 for a single run).\n",
        table,
    ]
    if plot is not None:
        parts.append(f"![{args.metric} vs parameters]({plot.name})\n")
    if skipped:
        parts.append("## Runs left out\n")
        parts.append("".join(f"- `{s.path}`: {s.reason}\n" for s in skipped))
    (out / "report.md").write_text("\n".join(parts))
    print(table, end="")
    print(f"\nwrote {out / 'report.md'}" + (f" and {plot}" if plot else ""))
    if skipped:
        print(f"left out {len(skipped)} unfinished or unreadable runs (listed in report.md)")
    return table


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.folder is None and not args.wandb_group:
        fail("folder: give a folder of runs (or --wandb-group NAME)")
    try:
        if args.folder is not None and (args.folder / "design.json").is_file():
            print(f"wrote {rebuild_experiment(args.folder)} (rebuilt from the folder's files)")
        else:
            build(args)
    except UserError as err:
        fail(str(err))


if __name__ == "__main__":
    main()
