"""Picking the largest model that fits a memory budget (spec, section 4.2)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def largest_fitting(
    ladder: Sequence[str], params: Mapping[str, int], memory: Mapping[str, int], budget: int
) -> str | None:
    """The size with the most parameters whose measured memory fits `budget` (None: none)."""
    fitting = [size for size in ladder if memory[size] <= budget]
    return max(fitting, key=lambda size: params[size]) if fitting else None
