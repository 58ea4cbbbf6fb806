"""Float64 references written from the definitions (spec, sections 1 and 5), and random models.

A plain loop over positions, layers and heads that reads the model's parameters and nothing else:
it never calls the model's forward, so the forward and every inference path (the `sdpa` mode is
the forward itself) are checked against something independent of them.

    dense:       layer l attends to the keys and values that layer m = kv_share * (l // kv_share)
                 makes from its own LN1 output, with n_kv heads: query head h reads K/V head
                 h // (H / n_kv)
    InAttention: every layer's keys and values are projections of N(x0), and position t's logits
                 depend on x0[<=t] and t's own path only
"""

from __future__ import annotations

import copy
import math

import torch

from inattn.model import GPT, GPTConfig, alibi_slopes

SHAPE = dict(vocab_size=50, context_length=32, n_layer=3, n_head=2, d_model=16)


def random_model(
    arch: str, position: str, dtype: torch.dtype = torch.float64, seed: int = 0, **kw
) -> GPT:
    """A small model in eval mode with every parameter random, biases and norms included.

    Default initialisation (zero biases, unit norms) would hide a bias or a norm applied in the
    wrong place; `kw` overrides the fields of SHAPE and any other GPTConfig field.
    """
    torch.manual_seed(seed)
    model = GPT(GPTConfig(arch=arch, position=position, **(SHAPE | kw))).to(dtype).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    return model


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest absolute difference, relative to the largest entry of the reference b."""
    return float((a.double() - b.double()).abs().max() / b.double().abs().max())


# ----------------------------------------------------------------------------- the definitions


def affine(w: torch.Tensor, b: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    return w @ x if b is None else w @ x + b


def layer_norm(x, w, b, eps):
    """LayerNorm of one vector; w None: without parameters (InAttention's N)."""
    mu = x.mean()
    var = ((x - mu) ** 2).mean()
    y = (x - mu) / math.sqrt(var + eps)
    return y if w is None else y * w + (0 if b is None else b)


def rotate(x: torch.Tensor, pos: int, cfg: GPTConfig) -> torch.Tensor:
    """RoPE on one head vector, pairs (i, i + hd/2) rotated by pos / scale * base^(-2i/hd)."""
    hd = x.shape[0]
    out = x.clone()
    for i in range(hd // 2):
        theta = (pos / cfg.rope_scale) * cfg.rope_base ** (-2 * i / hd)
        c, s = math.cos(theta), math.sin(theta)
        out[i] = x[i] * c - x[i + hd // 2] * s
        out[i + hd // 2] = x[i + hd // 2] * c + x[i] * s
    return out


def mlp(block, x):
    """W_2 GELU(W_1 x + b_1) + b_2, GELU in its tanh form (GPT-2's)."""
    h = affine(block.mlp.fc.weight, block.mlp.fc.bias, x)
    h = 0.5 * h * (1 + torch.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h**3)))
    return affine(block.mlp.proj.weight, block.mlp.proj.bias, h)


def ln(block_norm, x, cfg: GPTConfig):
    return layer_norm(x, block_norm.weight, block_norm.bias, cfg.norm_eps)


def initial_states(model: GPT, idx: torch.Tensor) -> list[torch.Tensor]:
    """x0 of one sequence (T,): token embedding, plus the learned position's row."""
    x0 = [model.tok_emb.weight[int(tok)].clone() for tok in idx]
    if model.cfg.position == "learned":
        x0 = [x + model.pos_emb.weight[t] for t, x in enumerate(x0)]
    return x0


def final_logits(model: GPT, h: torch.Tensor) -> torch.Tensor:
    head = model.tok_emb.weight if model.head is None else model.head.weight
    return head @ ln(model.ln_f, h, model.cfg)


def keys_values(block, cfg: GPTConfig, xs: list[torch.Tensor]) -> tuple[list, list]:
    """k_j = W_k x_j + b_k and v_j = W_v x_j + b_v (kv_dim each) for every source x_j; with
    RoPE each head of k_j rotated by its own position j."""
    d, kd, hd = cfg.d_model, cfg.kv_dim, cfg.head_dim
    W, b = block.attn.qkv.weight, block.attn.qkv.bias
    assert W.shape[0] == d + 2 * kd
    bk, bv = (None, None) if b is None else (b[d : d + kd], b[d + kd :])
    keys = [affine(W[d : d + kd], bk, x) for x in xs]
    if cfg.position == "rope":
        keys = [torch.cat([rotate(kh, j, cfg) for kh in k.split(hd)]) for j, k in enumerate(keys)]
    return keys, [affine(W[d + kd :], bv, x) for x in xs]


def attention(block, cfg: GPTConfig, a_t, t: int, keys: list, values: list) -> torch.Tensor:
    """W_o of the attention of position t (LN1 output a_t) over keys, values [0..t]."""
    d, H, hd = cfg.d_model, cfg.n_head, cfg.head_dim
    W, b = block.attn.qkv.weight, block.attn.qkv.bias
    q = affine(W[:d], None if b is None else b[:d], a_t)
    group = H // cfg.kv_heads
    slopes = alibi_slopes(H)
    out = torch.zeros(d, dtype=a_t.dtype)
    for h in range(H):
        qh, kv = q[h * hd : (h + 1) * hd], slice((h // group) * hd, (h // group + 1) * hd)
        if cfg.position == "rope":
            qh = rotate(qh, t, cfg)
        scores = []
        for j in range(t + 1):
            s = float(qh @ keys[j][kv]) / math.sqrt(hd)
            if cfg.position == "alibi":
                s -= float(slopes[h]) * (t - j)
            scores.append(s)
        m = max(scores)
        w = [math.exp(s - m) for s in scores]
        out[h * hd : (h + 1) * hd] = sum(wj / sum(w) * values[j][kv] for j, wj in enumerate(w))
    return affine(block.attn.proj.weight, block.attn.proj.bias, out)


def inattn_position(model: GPT, idx: torch.Tensor, t: int) -> torch.Tensor:
    """Logits (vocab,) of position t from x0[<=t] and t's own path only, as the spec says."""
    cfg = model.cfg
    x0 = initial_states(model, idx[: t + 1])
    s = [layer_norm(x, None, None, cfg.norm_eps) for x in x0]  # N(x0), no parameters
    h = x0[t]
    for block in model.blocks:
        h = h + attention(block, cfg, ln(block.ln1, h, cfg), t, *keys_values(block, cfg, s))
        h = h + mlp(block, ln(block.ln2, h, cfg))
    return final_logits(model, h)


def dense_logits(model: GPT, idx: torch.Tensor) -> torch.Tensor:
    """Logits (T, vocab) of one dense sequence, layer by layer, every position."""
    cfg = model.cfg
    hs = initial_states(model, idx)
    keys = values = None
    for layer, block in enumerate(model.blocks):
        a = [ln(block.ln1, h, cfg) for h in hs]
        if cfg.makes_kv(layer):  # the first layer of a sharing group makes its keys and values
            keys, values = keys_values(block, cfg, a)
        else:  # the others own W_q alone
            assert block.attn.qkv.weight.shape[0] == cfg.d_model
        hs = [h + attention(block, cfg, a[t], t, keys, values) for t, h in enumerate(hs)]
        hs = [h + mlp(block, ln(block.ln2, h, cfg)) for h in hs]
    return torch.stack([final_logits(model, h) for h in hs])


@torch.no_grad()
def reference_logits(model: GPT, idx: torch.Tensor, last_only: bool = False) -> torch.Tensor:
    """Logits (B, T, vocab), or (B, vocab) of the last position, in float64, of any model.

    A model in another dtype is read through a float64 copy of its parameters.
    """
    if model.tok_emb.weight.dtype != torch.float64:
        model = copy.deepcopy(model).double()
    rows = []
    for seq in idx:
        T = len(seq)
        if model.cfg.arch == "dense":
            logits = dense_logits(model, seq)
            rows.append(logits[-1] if last_only else logits)
        elif last_only:
            rows.append(inattn_position(model, seq, T - 1))
        else:
            rows.append(torch.stack([inattn_position(model, seq, t) for t in range(T)]))
    return torch.stack(rows)
