"""The linear-memory claim, measured and judged by one set of rules.

InAttention keeps one d-wide row of its state S per token, so its inference memory should grow
linearly with the context, by d x (bytes per element) per token, while naive dense attention
grows quadratically. Two places judge this claim: the `vram` experiment (thresholds declared in
the preset: `exponent_band`, `growth_tolerance`) and `benchmarks/inference_targets.py` (its own
declared targets). The thresholds differ; the measurements and the rules are these functions.
The paired statistics of the training claims are in `inattn.verdicts`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

import inattn.inference.modes as inference_modes
from inattn.units import parse_dtype

TOKEN_ID_BYTES = torch.long.itemsize  # the state path also keeps the context's int64 token ids
NO_CEILING = math.inf  # a band's upper end when only a floor is claimed (naive attention >= 1.9)


def state_row_bytes(d_model: int, dtype: str) -> int:
    """What InAttention's state S holds per token (`dtype` by name: fp32, bf16, ...)."""
    return inference_modes.state_row_bytes(d_model, parse_dtype(dtype))


def expected_state_growth(d_model: int, dtype: str) -> int:
    """Bytes per token the state path's peak should grow by: a row of S plus the token id."""
    return state_row_bytes(d_model, dtype) + TOKEN_ID_BYTES


def growth_per_token(contexts: Sequence[int], sizes: Sequence[float]) -> float:
    """Bytes added per token between the two longest contexts.

    Memory is a constant workspace plus a per-token term; the difference of two points cancels
    the constant, and the two longest are least disturbed by it.
    """
    (t_a, a), (t_b, b) = sorted(zip(contexts, sizes, strict=True))[-2:]
    return (b - a) / (t_b - t_a)


def growth_matches(growth: float, expected: float, tolerance: float) -> bool:
    """The measured growth within `tolerance` (a fraction) of the expected growth."""
    return abs(growth / expected - 1) <= tolerance


def exponent_in_band(exponent: float | None, band: Sequence[float]) -> bool:
    """A fitted scaling exponent inside [low, high]; no fit (too few points) fails."""
    low, high = band
    return exponent is not None and low <= exponent <= high
