"""The benchmark's figures: memory vs context (log-log, fitted exponents), speed vs context."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from inattn.bench.fit import Fit
from inattn.bench.grid import Row
from inattn.reporting.figures import log_log_axes, new_figure, palette, save_figure
from inattn.units import MiB

MARKERS = "osD^v<>p*h"
CONTEXT_AXIS = "context length T (tokens)"


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
    cmap = palette()
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
    fig, (ax1, ax2) = new_figure(13, 5.2, panels=2, sharey=False)
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
        log_log_axes(ax, CONTEXT_AXIS, "MiB")
    return save_figure(fig, [ax1, ax2], path, title=title, legend="drawn")


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
    fig, axes = new_figure(6.5 * len(panels), 5.2, panels=len(panels), sharey=False)
    for ax, (field, name, unit) in zip(axes, panels, strict=True):
        for (size, key), (xs, ys) in series[field].items():
            ax.plot(xs, ys, label=_name(size, key, sizes), **styles[size, key])
        ax.set_title(name)
        log_log_axes(ax, CONTEXT_AXIS, unit)
    return save_figure(fig, axes, path, title=title, legend="drawn")
