"""The one figure style of every PNG the project writes (reports, benchmarks, passkey maps).

Figures are made without pyplot, so no global state and no display: safe in any process, and
the same data always give the same bytes (no software version or timestamp in the file).

    fig, axes = new_figure(panels=2)
    axes[0].plot(...)
    save_figure(fig, axes, path, title="...")
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.colors import Colormap
from matplotlib.figure import Figure

DPI = 120
PALETTE = "tab10"  # one colour per series; the same series keeps its colour in every panel


def new_figure(
    width: float = 6.4, height: float = 4.4, panels: int = 1, sharey: bool = True
) -> tuple[Figure, list[Axes]]:
    """A figure of `panels` axes side by side."""
    fig = Figure(figsize=(width, height))
    axes = fig.subplots(1, panels, sharey=sharey, squeeze=False)[0]
    return fig, list(axes)


def palette() -> Colormap:
    """The colours of the series (index with an integer)."""
    from matplotlib import colormaps

    return colormaps[PALETTE]


def log_log_axes(ax: Axes, xlabel: str, ylabel: str, base_x: int = 2) -> None:
    """Log-log axes of a quantity against context length (or any positive x)."""
    ax.set_xscale("log", base=base_x)
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


def save_figure(
    fig: Figure,
    axes: Sequence[Axes],
    path: Path,
    title: str | None = None,
    grid: bool = True,
    legend: str = "always",
) -> Path:
    """Grid and legend on every panel, the title above, then a PNG without a timestamp.

    legend: "always" (every panel), "drawn" (panels where something labelled was drawn: a grid
    whose points were all skipped has none), or "never".
    """
    for ax in axes:
        if grid:
            ax.grid(True, which="both", alpha=0.3)
        labelled = bool(ax.get_legend_handles_labels()[0])
        if legend == "always" or (legend == "drawn" and labelled):
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, metadata={"Software": None})
    return path
