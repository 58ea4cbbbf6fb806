"""Inference memory of one configuration, measured on fake tensors (nothing is allocated)."""

from __future__ import annotations

import torch

from inattn.bench.measure import memory_point
from inattn.errors import ConfigError
from inattn.inference.common import DEFAULT_CHUNK
from inattn.memory import fake_module
from inattn.model import GPT, GPTConfig

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def inference_peak(cfg: GPTConfig, T: int, mode: str, dtype: str = "fp32") -> int:
    """Peak bytes (weights included) of next-token logits for a T-token context, batch 1."""
    if dtype not in DTYPES:
        raise ConfigError("dtype", f"unknown dtype {dtype!r}; choose one of {tuple(DTYPES)}")
    model = fake_module(lambda: GPT(cfg), dtype=DTYPES[dtype])
    return memory_point(model, T, mode, "meta", DEFAULT_CHUNK).peak_bytes
