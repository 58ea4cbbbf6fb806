"""Paths that keep no cache: every step runs the whole context through the model again.

`sdpa` is the plain full forward (`model(idx, last_only=True)`), fused attention and linear
memory. `naive` is the paper's quadratic baseline: the same forward with the H x T x T score
matrix of every layer materialised and an explicit softmax, as eager attention does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from inattn.inference.common import check_prompt, heads, merge_heads
from inattn.model import GPT, apply_rope


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
    cfg = model.cfg
    T, H, Hkv = idx.shape[1], cfg.n_head, cfg.kv_heads
    x0 = model.embed(idx)  # (B, T, d)
    rope, bias = model.position_context(T, idx.device, x0.dtype)
    if bias is None:  # plain causal mask: -inf above the diagonal, (T, T)
        bias = torch.full((T, T), float("-inf"), dtype=x0.dtype, device=idx.device).triu(1)
    kvs = model.inattn_kv(x0) if cfg.arch == "inattn" else None
    h, kv = x0, None
    for i, block in enumerate(model.blocks):
        if kvs is not None:  # InAttention: projected from N(x0) by the model
            kv = kvs[i]
        elif block.attn.makes_kv:  # dense: from this layer's own input (then reused, CLA)
            kv = None
        q, k, v = block.attn.project(block.ln1(h), kv)
        kv = (k, v)
        q, k, v = heads(q, H), heads(k, Hkv), heads(v, Hkv)  # (B, H or Hkv, T, hd)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        if Hkv != H:  # GQA: query head h reads K/V head h // (H / Hkv); O(T d), beside O(T^2)
            k, v = k.repeat_interleave(H // Hkv, dim=1), v.repeat_interleave(H // Hkv, dim=1)
        scores = q @ k.transpose(-2, -1) * cfg.head_dim**-0.5 + bias  # (B, H, T, T)
        y = torch.softmax(scores, dim=-1) @ v  # (B, H, T, hd)
        h = h + block.attn.proj(merge_heads(y))
        h = h + block.mlp(block.ln2(h))
    return model.logits(h[:, -1])  # (B, vocab)


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
