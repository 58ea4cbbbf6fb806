"""Finished runs summarised: metrics.json files (or W&B summaries) -> one row per group, a plot.

runs, skipped = scan_runs(folder)                       # every metrics.json below folder
rows = summarise(runs, by=("arch", "size"), metric="val_loss")  # mean, std, n per group
markdown.table(rows, ["arch", "size", "params", "n", "mean", "std"])
plot_metric_vs_params(rows, "loss.png", by=("arch", "size"))
"""

from __future__ import annotations

import json
import logging
import math
import os
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inattn.errors import ConfigError, DataError
from inattn.reporting.figures import new_figure, save_figure
from inattn.run_info import METRICS_FILE

log = logging.getLogger(__name__)

# keys that pick a model size: runs differing only in these lie on one loss-vs-params line
SIZE_KEYS = ("size", "n_layer", "n_head", "d_model", "params")


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


# ----------------------------------------------------------------------------- collecting


def _read(path: Path) -> tuple[dict[str, Any] | None, str]:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return None, f"unreadable {METRICS_FILE} ({err})"
    if not isinstance(data, dict):
        return None, f"{METRICS_FILE} is not a JSON object"
    return data, ""


def scan_runs(folder: str | Path) -> tuple[list[dict[str, Any]], list[Skipped]]:
    """Finished runs (one dict per metrics.json, plus `metrics_file`) and the runs left out.

    A run folder (one with `.hydra/` or `checkpoints/`) without metrics.json has not finished.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError("folder", f"no such folder: {folder}")
    runs, skipped = [], []
    for path in sorted(folder.rglob(METRICS_FILE)):
        data, reason = _read(path)
        if data is None:
            skipped.append(Skipped(str(path.parent), reason))
        else:
            runs.append({**data, "metrics_file": str(path)})
    for marker in ("checkpoints", ".hydra"):
        for sub in sorted(folder.rglob(marker)):
            run_dir = sub.parent
            if sub.is_dir() and not (run_dir / METRICS_FILE).exists():
                if all(s.path != str(run_dir) for s in skipped):
                    skipped.append(Skipped(str(run_dir), f"unfinished (no {METRICS_FILE})"))
    return runs, skipped


def collect_runs(folder: str | Path) -> list[dict[str, Any]]:
    """The finished runs below `folder`; the others are logged as warnings."""
    runs, skipped = scan_runs(folder)
    for s in skipped:
        log.warning("skipped %s: %s", s.path, s.reason)
    return runs


def wandb_runs(
    project: str, group: str, entity: str | None = None, api: Any = None
) -> tuple[list[dict[str, Any]], list[Skipped]]:
    """Summaries of the finished W&B runs of `group` (they hold the same keys as metrics.json)."""
    mode = os.environ.get("WANDB_MODE", "").lower()
    if api is None and mode in ("offline", "disabled", "dryrun"):
        raise DataError(
            "wandb-group",
            f"W&B is {mode} (WANDB_MODE); reading a group needs W&B online: unset WANDB_MODE, "
            "run `wandb login`, or report from the runs' folder instead",
        )
    path = f"{entity}/{project}" if entity else project
    try:
        if api is None:
            import wandb

            api = wandb.Api(timeout=30)
        found = list(api.runs(path, filters={"group": group}))
    except Exception as err:  # no API key, no network, no such project: one line for the user
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(
            "wandb-group", f"cannot read W&B runs of {path}, group {group!r}: {first}"
        ) from err
    runs, skipped = [], []
    for run in found:
        if run.state != "finished":
            skipped.append(Skipped(run.url, f"W&B run is {run.state}"))
        else:
            runs.append({**dict(run.summary_metrics), "wandb_url": run.url})
    return runs, skipped


# ----------------------------------------------------------------------------- summarising


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _sortable(value: Any) -> tuple:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value, "")
    return (1, 0, "") if value is None else (0.5, 0, str(value))


def summarise(
    runs: Sequence[Mapping[str, Any]],
    by: Sequence[str] = ("arch", "size", "context_length"),
    metric: str = "val_loss",
) -> list[dict[str, Any]]:
    """One row per group of `by` values: n, mean, std (sample, n-1; 0 for one run), params.

    Runs without a finite numeric `metric` are left out. Rows are ordered by the `by` keys, sizes
    by their parameter count.
    """
    by = tuple(by)
    for key in by:
        if not any(key in r for r in runs):
            raise ConfigError("by", f"no run has a field {key!r}")
    usable = [r for r in runs if _number(r.get(metric)) is not None]
    if not usable:
        numeric = sorted({k for r in runs for k, v in r.items() if _number(v) is not None})
        raise ConfigError(
            "metric", f"no run has a number for {metric!r}; numeric fields: {', '.join(numeric)}"
        )
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for r in usable:
        groups.setdefault(tuple(r.get(k) for k in by), []).append(r)
    rows = []
    for key, members in groups.items():
        values = [float(r[metric]) for r in members]
        params = [r["params"] for r in members if _number(r.get("params")) is not None]
        rows.append(
            {
                **dict(zip(by, key, strict=True)),
                "params": round(statistics.fmean(params)) if params else None,
                "n": len(values),
                "mean": statistics.fmean(values),
                "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            }
        )

    def order(row: dict[str, Any]) -> list[tuple]:
        return [_sortable(row["params"] if k == "size" else row[k]) for k in by]

    return sorted(rows, key=order)


# ----------------------------------------------------------------------------- plots


@dataclass
class Series:
    x: Sequence[float]
    y: Sequence[float]
    err: Sequence[float] | None = None


def plot_xy(
    series: Mapping[str, Series],
    path: str | Path,
    xlabel: str,
    ylabel: str,
    title: str = "",
    logx: bool = False,
    logy: bool = False,
) -> Path:
    """One line per series (error bars where given), saved as a PNG."""
    fig, (ax,) = new_figure()
    for label, s in series.items():
        ax.errorbar(s.x, s.y, yerr=s.err, marker="o", capsize=3, label=label)
    ax.set_xscale("log" if logx else "linear")
    ax.set_yscale("log" if logy else "linear")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return save_figure(fig, [ax], Path(path), legend="drawn")


def metric_vs_params(rows: Sequence[Mapping[str, Any]], by: Sequence[str]) -> dict[str, Series]:
    """Series of mean metric against parameters: one per group of the non-size `by` keys."""
    # a key names the line only where it varies (the arch always, when grouped by it)
    line_keys = [
        k for k in by if k not in SIZE_KEYS and (k == "arch" or len({r.get(k) for r in rows}) > 1)
    ]
    series: dict[str, Series] = {}
    for row in sorted((r for r in rows if r.get("params")), key=lambda r: r["params"]):
        label = (
            ", ".join(str(row[k]) if k == "arch" else f"{k}={row[k]}" for k in line_keys)
            or "all runs"
        )
        s = series.setdefault(label, Series([], [], []))
        s.x.append(row["params"])
        s.y.append(row["mean"])
        s.err.append(row["std"])
    return series


def plot_metric_vs_params(
    rows: Sequence[Mapping[str, Any]],
    path: str | Path,
    by: Sequence[str] = ("arch", "size", "context_length"),
    metric: str = "val_loss",
) -> Path | None:
    """Mean metric against parameter count (log x), one line per arch, std as error bars."""
    series = metric_vs_params(rows, by)
    if not series:
        return None
    return plot_xy(
        series,
        path,
        "parameters",
        metric.replace("_", " ") + " (mean ± std over seeds)",
        title=f"{metric.replace('_', ' ')} vs parameters",
        logx=True,
    )
