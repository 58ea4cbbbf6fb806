"""Attention of a chunk of queries over every key so far, with a mask that costs O(c + T).

A chunk of queries at positions q0..q1-1 attends to keys 0..q1-1: all of the cached past, and
causally within the chunk. sdpa's `is_causal` aligns the diagonal top-left, which is wrong when
there are more keys than queries, so the mask is explicit. Materialised it would be c x T per
head (ALiBi: H x c x T), which grows with the context. But the mask entry for query q and key j
depends only on the distance q - j, so with the queries in *reversed* order (row r is position
q1 - 1 - r) it depends only on r + j:

    mask[r, j] = row[r + j],   row[m] = f(q1 - 1 - m),  m = 0 .. c + q1 - 2

and the whole (c, q1) mask is `row.unfold(-1, q1, 1)`, a view with strides (1, 1) of one row of
c + q1 - 1 values (per head for ALiBi). PyTorch has no negative strides, hence the reversal of the
queries (a copy of c rows) rather than of the mask. sdpa's fused CPU kernel reads the view as is.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from inattn.model import GPT, alibi_bias


def reversed_mask(
    model: GPT, q0: int, q1: int, device: torch.device, dtype: torch.dtype
) -> torch.Tensor | None:
    """Additive mask (1, H or 1, q1 - q0, q1) for queries q1-1 down to q0 over keys 0..q1-1.

    ALiBi: -slope * (q - j), the same values as `alibi_bias`; otherwise 0. Both -inf for j > q.
    None when nothing needs masking (one query, which sees every key, and no ALiBi).
    """
    c, n = q1 - q0, (q1 - q0) + q1 - 1
    if model.cfg.position == "alibi":
        last = torch.tensor([q1 - 1], device=device)
        row = alibi_bias(model.alibi_slopes, last, torch.arange(n, device=device), dtype)[:, 0]
    elif c == 1:
        return None
    else:
        row = torch.zeros(1, n, dtype=dtype, device=device)
        row[:, q1:] = float("-inf")  # m >= q1 means j > q
    return row.unfold(-1, q1, 1)[None]  # (1, H or 1, c, q1), a view of `row`


def attend(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None
) -> torch.Tensor:
    """Attention (B, H, n, hd) of the chunk's *last* n queries q (B, H, n, hd) over k, v.

    k, v: (B, H_kv, T, hd); with H_kv < H, query head h reads K/V head h // (H / H_kv) (GQA).
    `mask` is `reversed_mask` of the whole chunk: its first n rows belong to those queries.
    """
    gqa = k.shape[1] != q.shape[1]
    if mask is None:
        return F.scaled_dot_product_attention(q, k, v, enable_gqa=gqa)
    n = q.shape[2]
    y = F.scaled_dot_product_attention(q.flip(2), k, v, attn_mask=mask[:, :, :n], enable_gqa=gqa)
    return y.flip(2)
