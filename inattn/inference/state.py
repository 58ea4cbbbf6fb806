"""InAttention's linear-memory inference: the state S = N(x0) and projection absorption.

Only the newest position travels through the layers (its final state depends on its own path and
on the initial states of positions <= t, nothing else). Per layer and head h, with the query
q_h = W_q,h a + b_q,h and the cached rows s_j of S:

    score_j = q_h . (W_k,h s_j + b_k,h) / sqrt(hd)
            = (W_k,h^T q_h) . s_j / sqrt(hd) + const        # keys absorbed into the query
    out_h   = sum_j p_j (W_v,h s_j + b_v,h)
            = W_v,h (sum_j p_j s_j) + b_v,h                 # values absorbed, since sum_j p_j = 1

so no layer ever forms keys or values for the context: per layer it reads S once, O(H T d) time,
in chunks with an online softmax (running max, denominator and weighted sum of s_j), so the
workspace is O(chunk x H) on top of S itself (T x d, shared by all layers).

Learned positions live in x0, so absorption is exact; ALiBi adds -slope * (t - j) to each score.
RoPE rotates each key by its own position between the projection and the dot product, which
breaks key absorption: there each layer rebuilds its keys from S chunk by chunk (more compute,
the same O(T x d) memory) while the values are still absorbed (they are not rotated).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from inattn.errors import ConfigError
from inattn.inference.common import (
    DEFAULT_CHUNK,
    check_chunk,
    check_prompt,
    chunks,
    ensure_capacity,
    model_dtype,
    rope_tables,
)
from inattn.model import GPT, Block, apply_rope


@dataclass
class InAttentionState:
    """S = N(x0) for every position so far: the whole per-token state, shared by all layers.

    S lives in one preallocated buffer rather than a list of chunks: each layer's online softmax
    then walks views of one tensor (no copies), an append writes one row in place, and the bytes
    held are exactly B x capacity x d. Generation asks for its final length up front, so the
    buffer never grows there; a caller that decodes past it pays one doubling copy.
    """

    s: torch.Tensor  # (B, capacity, d); rows [0, length) are filled
    length: int
    chunk: int | None = DEFAULT_CHUNK
    mode: str = "state"

    @property
    def filled(self) -> torch.Tensor:
        return self.s[:, : self.length]  # (B, length, d)

    def append(self, rows: torch.Tensor) -> None:
        """Add N(x0) rows (B, n, d) for the next n positions."""
        n = rows.shape[1]
        self.s = ensure_capacity(self.s, 1, self.length + n)
        self.s[:, self.length : self.length + n] = rows
        self.length += n


def build_state(
    model: GPT, idx: torch.Tensor, capacity: int | None = None, chunk: int | None = DEFAULT_CHUNK
) -> InAttentionState:
    """S for a (B, T) context, built chunk by chunk into a (B, max(T, capacity), d) buffer."""
    B, T = idx.shape
    shape = (B, max(T, capacity or T), model.cfg.d_model)
    s = torch.empty(shape, dtype=model_dtype(model), device=idx.device)
    for j0, j1 in chunks(T, chunk):
        s[:, j0:j1] = model.norm_x0(model.embed(idx[:, j0:j1], start=j0))  # (B, c, d)
    return InAttentionState(s, T, chunk)


def absorbed_attention(
    model: GPT, block: Block, q: torch.Tensor, s: torch.Tensor, chunk: int | None
) -> torch.Tensor:
    """One layer's attention for one query per sequence, before W_o: (B, d).

    q: (B, d) the query position's `block.query`; s: (B, n, d) the rows of S for positions
    0..n-1, the query being position n - 1 (causal: it sees every row).
    """
    cfg = model.cfg
    B, n, d = s.shape
    H, hd = cfg.n_head, cfg.head_dim
    pos = n - 1
    acc = torch.promote_types(s.dtype, torch.float32)  # softmax statistics in at least fp32
    w_kv, b_kv = block.attn.kv_weight()  # (2d, d): W_k then W_v, head h in rows h*hd:(h+1)*hd
    w_k, w_v = w_kv[:d], w_kv[d:]
    b_k, b_v = (None, None) if b_kv is None else (b_kv[:d], b_kv[d:])

    q = q.view(B, H, hd) * hd**-0.5  # (B, H, hd), sdpa's scale
    rope = rope_tables(model, pos, n, s.device, s.dtype)
    if rope is not None:
        q = apply_rope(q, *rope)  # keys are rotated per chunk below: no absorption for them
    else:
        # W_k,h^T q_h for every head. The q_h . b_k,h term is the same for every j and softmax
        # ignores a constant shift, so it is left out.
        qk = torch.einsum("bhe,hed->bhd", q, w_k.view(H, hd, d)).to(acc)  # (B, H, d)

    m = torch.full((B, H), float("-inf"), dtype=acc, device=s.device)  # running max
    z = torch.zeros(B, H, dtype=acc, device=s.device)  # running denominator sum_j exp(.)
    sbar = torch.zeros(B, H, d, dtype=acc, device=s.device)  # running sum_j exp(.) s_j
    for j0, j1 in chunks(n, chunk):
        sc = s[:, j0:j1].to(acc)  # (B, c, d); a no-op view unless S is in half precision
        if rope is None:
            scores = qk @ sc.transpose(1, 2)  # (B, H, c)
        else:  # rebuild this chunk's keys at their own positions
            k = F.linear(s[:, j0:j1], w_k, b_k).view(B, j1 - j0, H, hd).transpose(1, 2)
            k = apply_rope(k, *rope_tables(model, j0, j1, s.device, s.dtype))  # (B, H, c, hd)
            scores = (k @ q.unsqueeze(-1)).squeeze(-1).to(acc)  # (B, H, c)
        if cfg.position == "alibi":
            dist = pos - torch.arange(j0, j1, device=s.device, dtype=acc)  # (c,)
            scores = scores - model.alibi_slopes.to(acc)[:, None] * dist  # (H, c) broadcast
        m_new = torch.maximum(m, scores.amax(-1))  # (B, H)
        p = torch.exp(scores - m_new[..., None])  # (B, H, c)
        rescale = torch.exp(m - m_new)  # what was summed under the old max, (B, H)
        z = z * rescale + p.sum(-1)
        sbar = sbar * rescale[..., None] + p @ sc  # (B, H, c) @ (B, c, d) -> (B, H, d)
        m = m_new

    sbar = (sbar / z[..., None]).to(s.dtype)  # (B, H, d): sum_j p_j s_j per head
    y = torch.einsum("bhd,hed->bhe", sbar, w_v.view(H, hd, d))  # (B, H, hd): W_v,h sbar_h
    if b_v is not None:
        y = y + b_v.view(H, hd)  # + b_v,h, because the weights p_j sum to one
    return y.reshape(B, d)


def position_logits(model: GPT, x0: torch.Tensor, state: InAttentionState) -> torch.Tensor:
    """Next-token logits (B, vocab) of the last position of `state`, whose x0 (B, d) is given."""
    s = state.filled
    h = x0  # (B, d)
    for block in model.blocks:
        h = block.finish(h, absorbed_attention(model, block, block.query(h), s, state.chunk))
    return model.logits(h)  # (B, vocab)


def _check_inattn(model: GPT) -> None:
    if model.cfg.arch != "inattn":
        raise ConfigError(
            "mode", f"the state path needs an InAttention model, this one is {model.cfg.arch!r}"
        )


@torch.no_grad()
def prefill_state(
    model: GPT,
    idx: torch.Tensor,
    capacity: int | None = None,
    chunk: int | None = DEFAULT_CHUNK,
) -> tuple[torch.Tensor, InAttentionState]:
    """Next-token logits (B, vocab) for a (B, T) context and the state S to continue from."""
    _check_inattn(model)
    check_chunk(chunk)
    check_prompt(model, idx)
    state = build_state(model, idx, capacity, chunk)
    T = idx.shape[1]
    x0 = model.embed(idx[:, -1:], start=T - 1)[:, 0]  # (B, d): the last position's own start
    return position_logits(model, x0, state), state


@torch.no_grad()
def decode_state(
    model: GPT, token: torch.Tensor, state: InAttentionState
) -> tuple[torch.Tensor, InAttentionState]:
    """Append one token per sequence (B,) to S; logits (B, vocab) for the token after it."""
    x0 = model.embed(token[:, None], start=state.length)  # (B, 1, d)
    state.append(model.norm_x0(x0))
    return position_logits(model, x0[:, 0], state), state


def inattn_next_logits(
    model: GPT, idx: torch.Tensor, chunk: int | None = DEFAULT_CHUNK
) -> torch.Tensor:
    """Next-token logits (B, vocab) of an InAttention model in O(T x d) memory.

    Equals `model(idx)[:, -1]`. `chunk` keys per online-softmax step (None: all at once).
    """
    return prefill_state(model, idx, chunk=chunk)[0]
