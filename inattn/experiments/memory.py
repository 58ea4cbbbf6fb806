"""Inference memory of one configuration, measured on fake tensors (nothing is allocated)."""

from __future__ import annotations

from inattn.bench.measure import memory_point
from inattn.inference.common import DEFAULT_CHUNK
from inattn.memory import fake_module
from inattn.model import GPT, GPTConfig
from inattn.units import parse_dtype


def inference_peak(cfg: GPTConfig, T: int, mode: str, dtype: str = "fp32") -> int:
    """Peak bytes (weights included) of next-token logits for a T-token context, batch 1."""
    model = fake_module(lambda: GPT(cfg), dtype=parse_dtype(dtype))
    return memory_point(model, T, mode, "meta", DEFAULT_CHUNK).peak_bytes
