"""Paths that keep no cache: every step runs the whole context through the model again.

`sdpa` is the plain full forward (`model(idx, last_only=True)`), fused attention and linear
memory. `naive` is the paper's quadratic baseline: the same forward with the H x T x T score
matrix of every layer materialised and an explicit softmax, as eager attention does (the
model's `naive` branch).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from inattn.inference.common import check_prompt
from inattn.model import GPT


@dataclass
class TokenCache:
    """The token ids so far (B, T): all a recompute-everything path carries between steps."""

    idx: torch.Tensor
    mode: str  # naive | sdpa
    length: int = 0

    def __post_init__(self) -> None:
        self.length = self.idx.shape[1]


def sdpa_logits(model: GPT, idx: torch.Tensor) -> torch.Tensor:
    """Next-token logits (B, vocab) from the model's own forward."""
    return model(idx, last_only=True)[:, -1]


def naive_logits(model: GPT, idx: torch.Tensor) -> torch.Tensor:
    """Next-token logits (B, vocab) with explicit (B, H, T, T) scores at every layer."""
    return model(idx, last_only=True, naive=True)[:, -1]


RECOMPUTE = {"naive": naive_logits, "sdpa": sdpa_logits}


@torch.no_grad()
def prefill_tokens(model: GPT, idx: torch.Tensor, mode: str) -> tuple[torch.Tensor, TokenCache]:
    check_prompt(model, idx)
    return RECOMPUTE[mode](model, idx), TokenCache(idx, mode)


@torch.no_grad()
def decode_tokens(
    model: GPT, token: torch.Tensor, cache: TokenCache
) -> tuple[torch.Tensor, TokenCache]:
    """Append one token per sequence (B,) and run the whole context again."""
    cache.idx = torch.cat([cache.idx, token[:, None].to(cache.idx.dtype)], dim=1)
    cache.length = cache.idx.shape[1]
    return RECOMPUTE[cache.mode](model, cache.idx), cache
