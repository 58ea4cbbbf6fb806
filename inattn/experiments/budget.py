"""Picking the largest model that fits a memory budget (spec, section 4.2).

Each size's inference peak is measured on fake tensors (nothing is allocated, so a budget far
beyond this machine's memory can still be planned), then the largest size that fits is chosen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from inattn.bench.measure import memory_point
from inattn.inference.common import DEFAULT_CHUNK
from inattn.memory import fake_module
from inattn.model import GPT, GPTConfig
from inattn.units import parse_dtype


def inference_peak(cfg: GPTConfig, T: int, mode: str, dtype: str = "fp32") -> int:
    """Peak bytes (weights included) of next-token logits for a T-token context, batch 1."""
    model = fake_module(lambda: GPT(cfg), dtype=parse_dtype(dtype))
    return memory_point(model, T, mode, "meta", DEFAULT_CHUNK).peak_bytes


def largest_fitting(
    ladder: Sequence[str], params: Mapping[str, int], memory: Mapping[str, int], budget: int
) -> str | None:
    """The size with the most parameters whose measured memory fits `budget` (None: none)."""
    fitting = [size for size in ladder if memory[size] <= budget]
    return max(fitting, key=lambda size: params[size]) if fitting else None
