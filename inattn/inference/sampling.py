"""Choosing the next token from logits: greedy, temperature, top-k and top-p (nucleus)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from inattn.errors import ConfigError


def check_sampling(temperature: float, top_k: int | None, top_p: float | None) -> None:
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, (int, float))
        or temperature < 0
    ):
        raise ConfigError("temperature", f"temperature must be >= 0, got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ConfigError("top_k", f"top_k must be a positive integer or None, got {top_k!r}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ConfigError("top_p", f"top_p must be in (0, 1], got {top_p!r}")


def top_p_mask(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Which tokens (bool, like probs (..., V)) form the smallest set with mass >= top_p.

    Tokens are taken in decreasing probability; a token is kept while the mass before it is
    still short of top_p, so the most likely token is always kept.
    """
    sorted_p, order = probs.sort(dim=-1, descending=True)
    before = F.pad(sorted_p.cumsum(-1)[..., :-1], (1, 0))  # mass of the tokens ahead of each
    keep_sorted = before < top_p
    return torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)


def filter_logits(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> torch.Tensor:
    """logits / temperature (> 0) with the tokens outside top-k, then top-p, set to -inf."""
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        keep = top_p_mask(torch.softmax(logits, dim=-1), top_p)
        logits = logits.masked_fill(~keep, float("-inf"))
    return logits


def sample_next(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One token id per row of logits (B, vocab): (B,). temperature == 0 means greedy."""
    check_sampling(temperature, top_k, top_p)
    if temperature == 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(filter_logits(_at_least_fp32(logits), temperature, top_k, top_p), dim=-1)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


def _at_least_fp32(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.promote_types(x.dtype, torch.float32))
