"""Per-layer key/value caches, for both architectures.

Dense: prefill runs the context through the layers chunk by chunk of positions, keeping every
layer's keys and values (RoPE applied); each chunk attends to the cache filled so far plus itself,
so the workspace beyond the cache does not grow with T. Each new token then runs through the
layers alone, appending its own k, v at every layer.

Only distinct keys and values are kept: kv_heads heads per position (GQA, MQA), and one set per
sharing group of layers (CLA), written by the group's first layer and read by all of its layers.

InAttention (`kvcache` mode, speed over memory): the keys and values of every layer are
projections of S = N(x0), so prefill projects them chunk by chunk of positions, layer by layer,
and only the last position runs through the layers. Decoding is the same
per-step attention as the dense cache. It holds 2 L x as many bytes as the state S.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from inattn.inference.chunk_attention import attend, reversed_mask
from inattn.inference.common import (
    DEFAULT_CHUNK,
    check_chunk,
    check_prompt,
    chunks,
    ensure_capacity,
    model_dtype,
    rope_tables,
)
from inattn.model import GPT, Block, apply_rope, merge_heads, split_heads


@dataclass
class KVCache:
    """Keys (rotated when RoPE is used) and values of every sharing group, in one buffer.

    A group is the layers that attend to one layer's keys and values: each layer alone unless
    kv_share > 1. Slot g holds the K/V of layer kv_share x g, with kv_heads heads.

    `keys` and `values` are per-group views of the buffer, made once: a chunk's read or write is
    then one narrowing view per tensor. (Under fake tensors every view op costs about as much as
    a matmul, and the memory benchmark runs thousands of chunks.)
    """

    kv: torch.Tensor  # (groups, 2, B, kv_heads, capacity, hd); positions [0, length) are filled
    length: int
    mode: str = "kvcache"
    keys: tuple[torch.Tensor, ...] = field(init=False, repr=False)  # groups x (B, Hkv, cap, hd)
    values: tuple[torch.Tensor, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._make_views()

    def _make_views(self) -> None:
        keys, values = self.kv.unbind(1)  # (groups, B, kv_heads, capacity, hd) each
        self.keys, self.values = keys.unbind(0), values.unbind(0)

    @classmethod
    def empty(cls, model: GPT, B: int, capacity: int, device: torch.device) -> KVCache:
        cfg = model.cfg
        shape = (cfg.kv_groups, 2, B, cfg.kv_heads, capacity, cfg.head_dim)
        return cls(torch.empty(shape, dtype=model_dtype(model), device=device), 0)

    def write(self, group: int, start: int, k: torch.Tensor, v: torch.Tensor) -> None:
        """Store (B, kv_heads, n, hd) keys and values for positions start..start+n-1."""
        n = k.shape[2]
        grown = ensure_capacity(self.kv, 4, start + n)
        if grown is not self.kv:
            self.kv = grown
            self._make_views()
        self.keys[group].narrow(2, start, n).copy_(k)
        self.values[group].narrow(2, start, n).copy_(v)

    def read(self, group: int, end: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values (B, kv_heads, end, hd) of positions 0..end-1."""
        return self.keys[group].narrow(2, 0, end), self.values[group].narrow(2, 0, end)


def _write_inattn_kv(model: GPT, cache: KVCache, x0: torch.Tensor, start: int) -> None:
    """Project x0 (B, n, d) at positions start.. to every layer's k, v and store them.

    Layer by layer with each block's own W_k, W_v (views of its weights): `model.inattn_kv`
    would first concatenate all layers' weights, an L x 2d x d copy at every call.
    """
    d, H = model.cfg.d_model, model.cfg.n_head
    s = model.norm_x0(x0)  # (B, n, d)
    rope = rope_tables(model, start, start + x0.shape[1], x0.device, x0.dtype)
    for layer, block in enumerate(model.blocks):
        k, v = (split_heads(t, H) for t in F.linear(s, *block.attn.kv_weight()).split(d, dim=-1))
        if rope is not None:
            k = apply_rope(k, *rope)  # (B, H, n, hd)
        cache.write(layer, start, k, v)


def _queries_and_kv(
    model: GPT,
    block: Block,
    h: torch.Tensor,
    rope: tuple[torch.Tensor, torch.Tensor] | None,
    cache: KVCache,
    layer: int,
    start: int,
) -> torch.Tensor:
    """A layer's queries (B, H, n, hd) for states h (B, n, d) at positions start.., RoPE applied.

    A dense layer that makes keys and values (the first of its sharing group) stores them for
    those positions; InAttention's and the other layers' were stored beforehand.
    """
    cfg = model.cfg
    if cfg.arch == "dense" and block.attn.makes_kv:
        q, k, v = block.project(h)  # (B, n, d), (B, n, kv_dim) x 2
        k, v = split_heads(k, cfg.kv_heads), split_heads(v, cfg.kv_heads)  # (B, kv_heads, n, hd)
        if rope is not None:
            k = apply_rope(k, *rope)
        cache.write(cfg.kv_group(layer), start, k, v)
    else:
        q = block.query(h)  # (B, n, d)
    q = split_heads(q, cfg.n_head)  # (B, H, n, hd)
    return q if rope is None else apply_rope(q, *rope)


def _attend_block(
    block: Block, h: torch.Tensor, q: torch.Tensor, kv: tuple, mask: torch.Tensor | None
) -> torch.Tensor:
    """The rest of a block for the last positions h (B, n, d), whose queries q are given."""
    return block.finish(h, merge_heads(attend(q, *kv, mask)))


def _position_logits(model: GPT, x0: torch.Tensor, cache: KVCache, pos: int) -> torch.Tensor:
    """Run position `pos` (x0: (B, 1, d)) through the layers over cached positions 0..pos.

    Dense layers that make keys and values first append the position's own k, v; InAttention's
    were filled beforehand.
    """
    cfg = model.cfg
    rope = rope_tables(model, pos, pos + 1, x0.device, x0.dtype)
    mask = reversed_mask(model, pos, pos + 1, x0.device, x0.dtype)  # ALiBi only: (1, H, 1, pos+1)
    h = x0
    for layer, block in enumerate(model.blocks):
        q = _queries_and_kv(model, block, h, rope, cache, layer, pos)  # (B, H, 1, hd)
        h = _attend_block(block, h, q, cache.read(cfg.kv_group(layer), pos + 1), mask)
    cache.length = max(cache.length, pos + 1)
    return model.logits(h[:, 0])  # (B, vocab)


def _prefill_dense(
    model: GPT, idx: torch.Tensor, cache: KVCache, chunk: int | None
) -> torch.Tensor:
    """Fill the cache chunk by chunk of positions; logits (B, vocab) of the last position.

    Each chunk runs through the layers, its queries attending to the cache filled so far plus
    the chunk itself (`chunk_attention`), so beyond the cache the workspace is O(chunk x d),
    whatever T. From the last layer that makes keys and values on, no layer stores anything, so
    earlier chunks stop there and the last one goes on for its very last position alone.
    """
    cfg = model.cfg
    T = idx.shape[1]
    last_maker = cfg.kv_share * (cfg.kv_groups - 1)  # the last layer that makes K/V
    for j0, j1 in chunks(T, chunk):
        h = model.embed(idx[:, j0:j1], start=j0)  # (B, c, d)
        rope = rope_tables(model, j0, j1, h.device, h.dtype)
        mask = reversed_mask(model, j0, j1, h.device, h.dtype)  # (1, H or 1, c, j1), a view
        for layer, block in enumerate(model.blocks):
            q = _queries_and_kv(model, block, h, rope, cache, layer, j0)  # (B, H, c, hd)
            if layer == last_maker:
                if j1 < T:  # the rest feeds only the logits: not needed before the end
                    break
                q, h = q[:, :, -1:], h[:, -1:]
                rope = None if rope is None else (rope[0][-1:], rope[1][-1:])
            h = _attend_block(block, h, q, cache.read(cfg.kv_group(layer), j1), mask)
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
        return _prefill_dense(model, idx, cache, chunk), cache
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
