"""Scaling exponents: the slope of log(memory - weights) against log(context length).

Each mode's memory beyond its weights is (state and activations, growing with T) + (a constant
workspace: chunk buffers, the logits row). At short contexts the constant dominates and pulls a
log-log slope below the true growth rate, so the exponent is fitted on the longest contexts (the
last `tail` fraction of the points, at least two); the whole-range slope is reported beside it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from inattn.bench.grid import Row


def fit_exponent(
    contexts: Sequence[float], values: Sequence[float], tail: float = 1.0
) -> float | None:
    """Least-squares slope of log(value) on log(context) over the last `tail` of the points.

    Points are taken in order of context; non-positive values are left out. None when fewer than
    two points (with distinct contexts) remain.
    """
    pts = sorted((c, v) for c, v in zip(contexts, values, strict=True) if c > 0 and v > 0)
    keep = max(2, math.ceil(len(pts) * tail))
    pts = pts[-keep:]
    if len(pts) < 2 or pts[0][0] == pts[-1][0]:
        return None
    xs = [math.log(c) for c, _ in pts]
    ys = [math.log(v) for _, v in pts]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


@dataclass
class Fit:
    size: str
    key: str
    exponent: float | None  # fitted on the longest contexts
    exponent_all: float | None  # over every measured context
    fitted_from: int | None  # the shortest context in the tail fit
    fitted_to: int | None
    points: int  # measured (not skipped) contexts

    def label(self) -> str:
        if self.exponent is None:
            return "no fit"
        return f"T^{self.exponent:.2f}"


def memory_fits(rows: Sequence[Row], tail: float) -> list[Fit]:
    """One fit of (peak - weights) vs T per size and mode, over the points that were measured."""
    groups: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        if row.status == "ok" and row.activation_bytes is not None:
            groups.setdefault((row.size, row.key), []).append(row)
    fits = []
    for (size, key), group in groups.items():
        group.sort(key=lambda r: r.context)
        group = [r for r in group if r.context > 0 and r.activation_bytes > 0]  # as fit_exponent
        Ts = [r.context for r in group]
        ys = [r.activation_bytes for r in group]
        keep = max(2, math.ceil(len(Ts) * tail)) if len(Ts) >= 2 else 0
        tail_Ts = Ts[-keep:] if keep else []
        fits.append(
            Fit(
                size,
                key,
                fit_exponent(Ts, ys, tail),
                fit_exponent(Ts, ys, 1.0),
                tail_Ts[0] if tail_Ts else None,
                tail_Ts[-1] if tail_Ts else None,
                len(Ts),
            )
        )
    return fits
