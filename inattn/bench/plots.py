"""The benchmark's figures: memory vs context (log-log, fitted exponents), speed vs context."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display needed

import matplotlib.pyplot as plt  # noqa: E402

from inattn.bench.fit import Fit  # noqa: E402
from inattn.bench.grid import Row  # noqa: E402
from inattn.units import MiB

MARKERS = "osD^v<>p*h"


def _series(rows: Sequence[Row], field: str) -> dict[tuple[str, str], tuple[list, list]]:
    """(size, key) -> (contexts, values) of the measured points that have `field`."""
    out: dict[tuple[str, str], tuple[list, list]] = {}
    for row in sorted(rows, key=lambda r: r.context):
        value = getattr(row, field)
        if row.status == "ok" and value is not None:
            xs, ys = out.setdefault((row.size, row.key), ([], []))
            xs.append(row.context)
            ys.append(value)
    return out


def _styles(series: dict[tuple[str, str], tuple[list, list]]) -> dict[tuple[str, str], dict]:
    """One colour per mode, one marker per size: the same mode looks the same in every panel."""
    keys = sorted({k for _, k in series})
    sizes = sorted({s for s, _ in series})
    cmap = plt.get_cmap("tab10")
    return {
        (s, k): {
            "color": cmap(keys.index(k) % 10),
            "marker": MARKERS[sizes.index(s) % len(MARKERS)],
            "linestyle": "--" if k.startswith("dense") or k.startswith("hf") else "-",
        }
        for s, k in series
    }


def _name(size: str, key: str, sizes: set[str]) -> str:
    return key if len(sizes) == 1 else f"{size} {key}"


def plot_memory(rows: Sequence[Row], fits: Sequence[Fit], path: Path, title: str) -> Path:
    """Left: peak bytes with weights; right: peak - weights, fitted exponent in the legend."""
    total, beyond = _series(rows, "peak_bytes"), _series(rows, "activation_bytes")
    styles = _styles(total)
    sizes = {s for s, _ in total}
    by_key = {(f.size, f.key): f for f in fits}
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5.2))
    for (size, key), (xs, ys) in total.items():
        ax1.plot(xs, [y / MiB for y in ys], label=_name(size, key, sizes), **styles[size, key])
    for (size, key), (xs, ys) in beyond.items():
        fit = by_key.get((size, key))
        label = f"{_name(size, key, sizes)}: {fit.label() if fit else 'no fit'}"
        ax2.plot(xs, [y / MiB for y in ys], label=label, **styles[size, key])
    tails = {(f.fitted_from, f.fitted_to) for f in fits if f.fitted_from is not None}
    fit_note = ""
    if len(tails) == 1:
        lo, hi = tails.pop()
        fit_note = f" (exponent fitted on T = {lo:,} ... {hi:,})"
    ax1.set_title("peak memory, weights included")
    ax2.set_title("peak memory - weights" + fit_note, fontsize=10)
    for ax in (ax1, ax2):
        _log_log(ax, "MiB")
    return _save(fig, title, path)


def plot_speed(rows: Sequence[Row], path: Path, title: str) -> Path:
    """Time to first token and decode tokens/s against T (log-log), a panel for each measured."""
    panels = [
        ("ttft_s", "time to first token (prefill -> next-token logits), median", "seconds"),
        ("decode_tok_s", "decode speed, median", "tokens / s"),
    ]
    series = {field: _series(rows, field) for field, _, _ in panels}
    panels = [p for p in panels if series[p[0]]] or panels[:1]  # an empty grid: one empty panel
    styles = _styles({k: v for field in series for k, v in series[field].items()})
    sizes = {s for field in series for s, _ in series[field]}
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 5.2), squeeze=False)
    for ax, (field, name, unit) in zip(axes[0], panels, strict=True):
        for (size, key), (xs, ys) in series[field].items():
            ax.plot(xs, ys, label=_name(size, key, sizes), **styles[size, key])
        ax.set_title(name)
        _log_log(ax, unit)
    return _save(fig, title, path)


def _log_log(ax: plt.Axes, unit: str) -> None:
    """Log-log axes against context length, with a legend when anything was drawn."""
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("context length T (tokens)")
    ax.set_ylabel(unit)
    ax.grid(True, which="both", alpha=0.3)
    if ax.lines:  # every point may have been skipped
        ax.legend(fontsize=8)


def _save(fig: plt.Figure, title: str, path: Path) -> Path:
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
