"""Per-layer key/value caches, for both architectures.

Dense: prefill is a full forward that keeps every layer's keys and values (RoPE applied); each
new token then runs through the layers alone, appending its own k, v at every layer.

InAttention (`kvcache` mode, speed over memory): the keys and values of every layer are
projections of S = N(x0), so prefill projects them for all layers in one matmul per chunk
(`model.inattn_kv`) and only the last position runs through the layers. Decoding is the same
per-step attention as the dense cache. It holds 2 L x as many bytes as the state S.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from inattn.inference.common import (
    DEFAULT_CHUNK,
    check_chunk,
    check_prompt,
    chunks,
    ensure_capacity,
    heads,
    merge_heads,
    model_dtype,
    rope_tables,
)
from inattn.model import GPT, alibi_bias, apply_rope


@dataclass
class KVCache:
    """Keys (rotated when RoPE is used) and values of every layer, in one preallocated buffer."""

    kv: torch.Tensor  # (L, 2, B, H, capacity, hd); positions [0, length) are filled
    length: int
    mode: str = "kvcache"

    @classmethod
    def empty(cls, model: GPT, B: int, capacity: int, device: torch.device) -> KVCache:
        cfg = model.cfg
        shape = (cfg.n_layer, 2, B, cfg.n_head, capacity, cfg.head_dim)
        return cls(torch.empty(shape, dtype=model_dtype(model), device=device), 0)

    def write(self, layer: int, start: int, k: torch.Tensor, v: torch.Tensor) -> None:
        """Store (B, H, n, hd) keys and values for positions start..start+n-1."""
        n = k.shape[2]
        self.kv = ensure_capacity(self.kv, 4, start + n)
        self.kv[layer, 0, :, :, start : start + n] = k
        self.kv[layer, 1, :, :, start : start + n] = v

    def read(self, layer: int, end: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values (B, H, end, hd) of positions 0..end-1."""
        return self.kv[layer, 0, :, :, :end], self.kv[layer, 1, :, :, :end]


def _write_inattn_kv(model: GPT, cache: KVCache, x0: torch.Tensor, start: int) -> None:
    """Project x0 (B, n, d) at positions start.. to every layer's k, v (one matmul) and store."""
    H = model.cfg.n_head
    rope = rope_tables(model, start, start + x0.shape[1], x0.device, x0.dtype)
    for layer, (k, v) in enumerate(model.inattn_kv(x0)):  # L pairs of (B, n, d)
        k, v = heads(k, H), heads(v, H)  # (B, H, n, hd)
        if rope is not None:
            k = apply_rope(k, *rope)
        cache.write(layer, start, k, v)


def _position_logits(model: GPT, x0: torch.Tensor, cache: KVCache, pos: int) -> torch.Tensor:
    """Run position `pos` (x0: (B, 1, d)) through the layers over cached positions 0..pos.

    Dense layers first append the position's own k, v; InAttention ones were filled beforehand.
    """
    cfg = model.cfg
    d, H = cfg.d_model, cfg.n_head
    rope = rope_tables(model, pos, pos + 1, x0.device, x0.dtype)
    bias = None
    if cfg.position == "alibi":
        q_pos, k_pos = (torch.arange(p, pos + 1, device=x0.device) for p in (pos, 0))
        bias = alibi_bias(model.alibi_slopes, q_pos, k_pos, x0.dtype)[None]  # (1, H, 1, pos+1)
    h = x0
    for layer, block in enumerate(model.blocks):
        a = block.ln1(h)  # (B, 1, d)
        if cfg.arch == "dense":
            q, k, v = (heads(t, H) for t in block.attn.qkv(a).split(d, dim=2))  # (B, H, 1, hd)
            if rope is not None:
                k = apply_rope(k, *rope)
            cache.write(layer, pos, k, v)
        else:
            q = heads(F.linear(a, *block.attn.q_weight()), H)
        if rope is not None:
            q = apply_rope(q, *rope)
        k, v = cache.read(layer, pos + 1)  # (B, H, pos+1, hd)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)  # one query sees all: no mask
        h = h + block.attn.proj(merge_heads(y))
        h = h + block.mlp(block.ln2(h))
    cache.length = max(cache.length, pos + 1)
    return model.logits(h[:, 0])  # (B, vocab)


def _prefill_dense(model: GPT, idx: torch.Tensor, cache: KVCache) -> torch.Tensor:
    """Full forward that keeps each layer's k, v; the last layer runs the last query only."""
    cfg = model.cfg
    T, d, H = idx.shape[1], cfg.d_model, cfg.n_head
    x0 = model.embed(idx)  # (B, T, d)
    rope, bias = model.position_context(T, idx.device, x0.dtype)  # bias: (H, T, T) for ALiBi
    h = x0
    for layer, block in enumerate(model.blocks):
        q, k, v = (heads(t, H) for t in block.attn.qkv(block.ln1(h)).split(d, dim=2))
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)  # (B, H, T, hd)
        cache.write(layer, 0, k, v)
        if layer == cfg.n_layer - 1:  # from here on only the last position matters
            q, h = q[:, :, -1:], h[:, -1:]
            mask = None if bias is None else bias[None, :, -1:]  # the last query sees all
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        elif bias is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:  # a 4-D mask keeps sdpa's fused CPU kernel
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias[None])
        h = h + block.attn.proj(merge_heads(y))
        h = h + block.mlp(block.ln2(h))
    cache.length = T
    return model.logits(h[:, -1])  # (B, vocab)


@torch.no_grad()
def prefill_kv(
    model: GPT,
    idx: torch.Tensor,
    capacity: int | None = None,
    chunk: int | None = DEFAULT_CHUNK,
) -> tuple[torch.Tensor, KVCache]:
    """Next-token logits (B, vocab) for a (B, T) context and the per-layer K/V cache."""
    check_chunk(chunk)
    check_prompt(model, idx)
    B, T = idx.shape
    cache = KVCache.empty(model, B, max(T, capacity or T), idx.device)
    if model.cfg.arch == "dense":
        return _prefill_dense(model, idx, cache), cache
    for j0, j1 in chunks(T, chunk):  # keys and values of all layers, chunk by chunk
        _write_inattn_kv(model, cache, model.embed(idx[:, j0:j1], start=j0), j0)
    cache.length = T
    x0 = model.embed(idx[:, -1:], start=T - 1)  # (B, 1, d)
    return _position_logits(model, x0, cache, T - 1), cache


@torch.no_grad()
def decode_kv(model: GPT, token: torch.Tensor, cache: KVCache) -> tuple[torch.Tensor, KVCache]:
    """Append one token per sequence (B,); logits (B, vocab) for the token after it."""
    pos = cache.length
    x0 = model.embed(token[:, None], start=pos)  # (B, 1, d)
    if model.cfg.arch == "inattn":
        _write_inattn_kv(model, cache, x0, pos)
    return _position_logits(model, x0, cache, pos), cache
