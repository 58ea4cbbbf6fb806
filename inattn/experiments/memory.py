"""Inference memory of one configuration, measured on fake tensors (nothing is allocated)."""

from __future__ import annotations

import torch

from inattn.errors import ConfigError
from inattn.inference.modes import prefill
from inattn.memory import fake_module, fake_tokens, measure_peak
from inattn.model import GPT, GPTConfig

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def inference_peak(cfg: GPTConfig, T: int, mode: str, dtype: str = "fp32") -> int:
    """Peak bytes (weights included) of next-token logits for a T-token context, batch 1."""
    if dtype not in DTYPES:
        raise ConfigError("dtype", f"unknown dtype {dtype!r}; choose one of {tuple(DTYPES)}")
    model = fake_module(lambda: GPT(cfg), dtype=DTYPES[dtype])
    idx = fake_tokens(1, T, cfg.vocab_size, like=model)
    report = measure_peak(
        lambda: prefill(model, idx, mode), module=model, inputs=idx, device="meta"
    )
    return report.peak_bytes
