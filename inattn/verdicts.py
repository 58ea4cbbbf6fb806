"""Paired statistics and the verdict word of a claim: `held`, `not held` or `inconclusive`.

Every compared variant is trained with the same seeds, so the natural unit is the per-seed
difference `d_i = a_i - b_i` (same data order, same initial random stream). Over n seeds:

    mean = sum(d) / n,   se = sd(d) / sqrt(n),   95% interval = mean +- t(0.975, n-1) * se

A claim names the direction it expects (the difference should be positive). Its verdict is

    held          the interval lies wholly above zero
    not held      the interval lies wholly below zero
    inconclusive  the interval contains zero (or n < 2: no interval at all)

These are pure functions of the numbers, so the same rows always give the same words; the
experiments, the report rebuilder and the tests all call them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

HELD, NOT_HELD, INCONCLUSIVE = "held", "not held", "inconclusive"
WORDS = (HELD, NOT_HELD, INCONCLUSIVE)

# Two-sided 95% quantiles of Student's t, t(0.975, df), for df = 1..30 (standard tables).
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip
_Z975 = 1.959964


def t_quantile_975(df: int) -> float:
    """t(0.975, df): the table up to 30, then the Cornish-Fisher expansion (error < 1e-3)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df <= len(_T975):
        return _T975[df - 1]
    z = _Z975
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


@dataclass(frozen=True)
class Paired:
    """Summary of per-seed differences; `lo`/`hi` are NaN when n < 2."""

    n: int
    mean: float
    se: float
    lo: float
    hi: float

    def text(self, digits: int = 3) -> str:
        """`+0.123 ± 0.045 (95% CI [+0.010, +0.236], n=5)`; one seed shows no interval."""
        if self.n < 2:
            return f"{self.mean:+.{digits}f} (n={self.n}, no interval)"
        return (
            f"{self.mean:+.{digits}f} ± {self.se:.{digits}f} "
            f"(95% CI [{self.lo:+.{digits}f}, {self.hi:+.{digits}f}], n={self.n})"
        )


def paired(differences: Sequence[float]) -> Paired:
    """Mean, standard error and 95% t-interval of per-seed differences."""
    d = [float(x) for x in differences]
    n = len(d)
    if n == 0:
        raise ValueError("no paired differences")
    mean = sum(d) / n
    if n < 2:
        return Paired(n, mean, math.nan, math.nan, math.nan)
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
    se = sd / math.sqrt(n)
    half = t_quantile_975(n - 1) * se
    return Paired(n, mean, se, mean - half, mean + half)


def paired_by_seed(a: Mapping[int, float], b: Mapping[int, float]) -> Paired:
    """`a - b` over the seeds both have (seeds missing on either side are left out)."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        raise ValueError("the two sides share no seed")
    return paired([a[s] - b[s] for s in seeds])


def verdict(p: Paired) -> str:
    """The word for a claim that expects a positive difference (see the module docstring)."""
    if p.n < 2 or math.isnan(p.lo):
        return INCONCLUSIVE
    if p.lo > 0:
        return HELD
    if p.hi < 0:
        return NOT_HELD
    return INCONCLUSIVE


def threshold_verdict(value: float, low: float, high: float) -> str:
    """For a deterministic measurement: `held` inside [low, high], `not held` outside."""
    if math.isnan(value):
        return INCONCLUSIVE
    return HELD if low <= value <= high else NOT_HELD


def combine(words: Sequence[str]) -> str:
    """One word for a claim tested at several points (budgets, sizes), declared in advance:
    `held` if held at every point, `not held` if not held at any point, else `inconclusive`."""
    if not words:
        return INCONCLUSIVE
    if NOT_HELD in words:
        return NOT_HELD
    return HELD if all(w == HELD for w in words) else INCONCLUSIVE


def mean(values: Sequence[float | None]) -> float:
    """Mean of the values that are not None (NaN when none are)."""
    kept = [float(v) for v in values if v is not None]
    return sum(kept) / len(kept) if kept else math.nan


def sd(values: Sequence[float]) -> float:
    """Sample standard deviation (n - 1); NaN for fewer than two values."""
    if len(values) < 2:
        return math.nan
    m = mean(values)
    return math.sqrt(sum((x - m) ** 2 for x in values) / (len(values) - 1))
