"""One GPT backbone, two places keys and values can come from.

    x0     = tok_emb[idx] (+ pos_emb)                   # initial states, (B, T, d)
    h      = x0
    per layer:  a = LN1(h)
                dense:       k, v = W_k a,     W_v a    # this layer's own input
                InAttention: k, v = W_k N(x0), W_v N(x0) # the initial states only
                h = h + W_o Attn(W_q a, k, v, causal)
                h = h + MLP(LN2(h))
    logits = head(LNf(h))

`N` is a layer norm without parameters, shared by all layers (see the spec, section 1). Because
every InAttention layer reads the same N(x0), the keys and values of all layers are projected in
one batched matmul (`inattn_kv`). Both variants own exactly the same parameters, so a checkpoint
of one loads into the other and "same size" means the same parameter count.

Dense models also come in the K/V-memory family of the spec, section 5 (they cache fewer numbers
per token, at the price of a few parameters):

    n_kv_head < n_head  grouped-query (GQA; MQA at 1): query head h reads K/V head h // (H / n_kv),
                        so W_k, W_v have n_kv x hd rows instead of d
    kv_share = k        cross-layer attention (CLA-k): layer l attends to the keys and values made
                        by layer k * (l // k), the first of its group (the last group may be
                        shorter); the other layers of a group own W_q only

Per token a K/V cache then keeps 2 ceil(L / k) n_kv hd numbers (InAttention: d, for all layers).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from inattn.errors import ConfigError

ARCHS = ("dense", "inattn")
POSITIONS = ("learned", "rope", "alibi", "none")
VARIANTS = ("dense", "gqa", "mqa", "cla", "inattn")  # the options of conf/arch


def gqa_heads(n_head: int) -> int:
    """The `gqa` variant's K/V heads: the largest divisor of n_head that is at most n_head / 2.

    Half the heads where n_head is even (gpt2-small: 6 of 12); 5 of 25 for gpt2-xl; 1 (MQA) for
    a prime head count.
    """
    return max(k for k in range(1, n_head // 2 + 1) if n_head % k == 0) if n_head > 1 else 1


def variant_fields(variant: str, n_head: int) -> dict[str, Any]:
    """GPTConfig fields of a named variant: what `arch=<variant>` sets (conf/arch/*.yaml)."""
    fields: dict[str, dict[str, Any]] = {
        "dense": {"arch": "dense", "n_kv_head": None, "kv_share": 1},
        "gqa": {"arch": "dense", "n_kv_head": gqa_heads(n_head), "kv_share": 1},
        "mqa": {"arch": "dense", "n_kv_head": 1, "kv_share": 1},
        "cla": {"arch": "dense", "n_kv_head": 1, "kv_share": 2},  # CLA-2 over MQA
        "inattn": {"arch": "inattn", "n_kv_head": None, "kv_share": 1},
    }
    if variant not in fields:
        raise ConfigError("arch", f"unknown variant {variant!r}; choose one of {VARIANTS}")
    return dict(fields[variant])


@dataclass
class GPTConfig:
    arch: str = "inattn"  # dense | inattn
    vocab_size: int = 4096
    context_length: int = 256  # longest sequence the model accepts (size of a learned table)
    n_layer: int = 4
    n_head: int = 4
    d_model: int = 128
    mlp_ratio: int = 4
    position: str = "learned"  # learned | rope | alibi | none
    rope_base: float = 10000.0
    rope_scale: float = 1.0  # position interpolation: positions are divided by this
    tie_weights: bool = True
    bias: bool = True
    dropout: float = 0.0
    norm_eps: float = 1e-5
    n_kv_head: int | None = None  # dense: key/value heads (None: n_head; 1: multi-query)
    kv_share: int = 1  # dense: consecutive layers sharing one layer's keys/values (2: CLA-2)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.arch not in ARCHS:
            raise ConfigError("arch", f"unknown arch {self.arch!r}; choose one of {ARCHS}")
        if self.position not in POSITIONS:
            raise ConfigError(
                "position", f"unknown position {self.position!r}; choose one of {POSITIONS}"
            )
        if self.arch == "inattn" and self.position == "none":
            raise ConfigError(
                "position",
                "InAttention needs a position signal (learned, rope or alibi): its keys come "
                "from the initial embeddings only, so without positions it cannot see token order",
            )
        for name in ("vocab_size", "context_length", "n_layer", "n_head", "d_model", "mlp_ratio"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(name, f"{name} must be a positive integer, got {value!r}")
        for name in ("rope_base", "rope_scale", "norm_eps", "dropout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(name, f"{name} must be a number, got {value!r}")
        if self.d_model % self.n_head:
            raise ConfigError(
                "d_model", f"d_model={self.d_model} is not divisible by n_head={self.n_head}"
            )
        if self.position == "rope" and (self.d_model // self.n_head) % 2:
            raise ConfigError("n_head", "RoPE needs an even head dimension (d_model / n_head)")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError("dropout", f"dropout must be in [0, 1), got {self.dropout}")
        self.validate_kv()

    def validate_kv(self) -> None:
        """n_kv_head and kv_share: dense only, a divisor of n_head, a group of 1..n_layer layers."""
        kv, share = self.n_kv_head, self.kv_share
        if kv is not None and (isinstance(kv, bool) or not isinstance(kv, int) or kv < 1):
            raise ConfigError(
                "model.n_kv_head", f"n_kv_head must be a positive integer or null, got {kv!r}"
            )
        if isinstance(share, bool) or not isinstance(share, int) or share < 1:
            raise ConfigError("model.kv_share", f"kv_share must be an integer >= 1, got {share!r}")
        if self.arch == "inattn" and (kv is not None or share != 1):
            field = "model.n_kv_head" if kv is not None else "model.kv_share"
            raise ConfigError(
                field,
                "InAttention keeps one N(x0) state for all layers and heads: n_kv_head and "
                "kv_share apply to dense models only (use arch=gqa, mqa or cla)",
            )
        if kv is not None and self.n_head % kv:
            raise ConfigError(
                "model.n_kv_head", f"n_kv_head={kv} does not divide n_head={self.n_head}"
            )
        if share > self.n_layer:
            raise ConfigError(
                "model.kv_share", f"kv_share={share} is more than n_layer={self.n_layer}"
            )

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    @property
    def kv_heads(self) -> int:
        return self.n_head if self.n_kv_head is None else self.n_kv_head

    @property
    def kv_dim(self) -> int:
        """Width of one layer's keys (and of its values): kv_heads x head_dim."""
        return self.kv_heads * self.head_dim

    @property
    def kv_groups(self) -> int:
        """Layers that make keys and values: ceil(n_layer / kv_share)."""
        return -(-self.n_layer // self.kv_share)

    def kv_group(self, layer: int) -> int:
        """The sharing group of `layer`; its first layer (kv_share x group) makes the K/V."""
        return layer // self.kv_share

    def makes_kv(self, layer: int) -> bool:
        return layer % self.kv_share == 0

    def to_dict(self) -> dict:
        return asdict(self)


# ----------------------------------------------------------------------------- positions


def rope_cos_sin(
    cfg: GPTConfig, positions: torch.Tensor, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables for rotate-half RoPE, shape (T, head_dim)."""
    hd = cfg.head_dim
    inv_freq = 1.0 / (
        cfg.rope_base ** (torch.arange(0, hd, 2, device=positions.device, dtype=torch.float64) / hd)
    )
    angles = (positions.to(torch.float64) / cfg.rope_scale)[:, None] * inv_freq[None, :]
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate (..., T, head_dim) by the tables of `rope_cos_sin`."""
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


def alibi_slopes(n_head: int) -> torch.Tensor:
    """Per-head ALiBi slopes (Press et al.), including the rule for non-powers of two."""

    def power_of_two(n: int) -> list[float]:
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [start * start**i for i in range(n)]

    if math.log2(n_head).is_integer():
        slopes = power_of_two(n_head)
    else:
        closest = 2 ** math.floor(math.log2(n_head))
        slopes = power_of_two(closest) + power_of_two(2 * closest)[0::2][: n_head - closest]
    return torch.tensor(slopes, dtype=torch.float64)


def alibi_bias(
    slopes: torch.Tensor, q_pos: torch.Tensor, k_pos: torch.Tensor, dtype: torch.dtype
) -> torch.Tensor:
    """Additive attention bias (H, Tq, Tk): -slope * distance, and -inf above the diagonal."""
    dist = (q_pos[:, None] - k_pos[None, :]).to(torch.float64)
    bias = -slopes.to(q_pos.device)[:, None, None] * dist
    bias = bias.masked_fill(dist < 0, float("-inf"))
    return bias.to(dtype)


# ----------------------------------------------------------------------------- modules


def split_heads(x: torch.Tensor, n_head: int) -> torch.Tensor:
    """(B, T, n_head x hd) -> (B, n_head, T, hd)."""
    B, T, d = x.shape
    return x.view(B, T, n_head, d // n_head).transpose(1, 2)


def merge_heads(y: torch.Tensor) -> torch.Tensor:
    """(B, H, T, hd) -> (B, T, H x hd)."""
    B, H, T, hd = y.shape
    return y.transpose(1, 2).reshape(B, T, H * hd)


class CausalSelfAttention(nn.Module):
    """Causal attention with H query heads over kv_heads key/value heads (GQA when fewer).

    `qkv` holds W_q, W_k, W_v stacked, as in GPT-2: (d + 2 kv_dim, d). A dense layer that reuses
    the keys and values of the first layer of its group (kv_share > 1) holds W_q alone: (d, d).
    The output projection W_o (`proj`) is applied by the block, after whichever attention ran.
    """

    def __init__(self, cfg: GPTConfig, makes_kv: bool = True):
        super().__init__()
        self.cfg = cfg
        self.makes_kv = makes_kv
        self.kv_dim = cfg.kv_dim if makes_kv else 0
        self.qkv = nn.Linear(cfg.d_model, cfg.d_model + 2 * self.kv_dim, bias=cfg.bias)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)

    def q_weight(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        d = self.cfg.d_model
        return self.qkv.weight[:d], None if self.qkv.bias is None else self.qkv.bias[:d]

    def kv_weight(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """W_k then W_v, (2 kv_dim, d), and their biases; empty for a layer that reuses K/V."""
        d = self.cfg.d_model
        return self.qkv.weight[d:], None if self.qkv.bias is None else self.qkv.bias[d:]

    def query(self, a: torch.Tensor) -> torch.Tensor:
        """q = W_q a + b_q, (B, T, d): all a layer needs when its keys and values exist already."""
        return F.linear(a, *self.q_weight())

    def project(
        self, a: torch.Tensor, kv: tuple[torch.Tensor, torch.Tensor] | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q (B, T, d) from a; k, v (B, T, kv_dim) from a too, or `kv` when they were made
        elsewhere (InAttention: from N(x0) by the model; CLA: by an earlier layer)."""
        if kv is None:  # dense: keys and values from this layer's own input
            q, k, v = self.qkv(a).split([self.cfg.d_model, self.kv_dim, self.kv_dim], dim=2)
            return q, k, v
        return self.query(a), *kv

    def forward(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor] | None,
        bias: torch.Tensor | None,
        naive: bool = False,
    ) -> torch.Tensor:
        """Causal attention of q (B, T, d) over k, v (B, T, kv_dim): (B, T, d), before W_o.

        `naive` is the quadratic baseline eager attention runs: the (B, H, T, T) scores
        materialised and an explicit softmax; otherwise sdpa's fused kernel.
        """
        H, Hkv, hd = self.cfg.n_head, self.cfg.kv_heads, self.cfg.head_dim
        q, k, v = split_heads(q, H), split_heads(k, Hkv), split_heads(v, Hkv)  # (B, H|Hkv, T, hd)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        p = self.cfg.dropout if self.training else 0.0
        gqa = Hkv != H  # query head h reads K/V head h // (H / Hkv)
        if naive:
            T = q.shape[2]
            if bias is None:  # plain causal mask: -inf above the diagonal, (T, T)
                bias = torch.full((T, T), float("-inf"), dtype=q.dtype, device=q.device).triu(1)
            if gqa:  # the K/V heads copied for their queries: O(T d), beside O(T^2)
                k, v = k.repeat_interleave(H // Hkv, dim=1), v.repeat_interleave(H // Hkv, dim=1)
            scores = q @ k.transpose(-2, -1) * hd**-0.5 + bias  # (B, H, T, T)
            y = F.dropout(torch.softmax(scores, dim=-1), p) @ v  # (B, H, T, hd)
        elif bias is None:  # sdpa reads the shared K/V heads in place, copying nothing
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True, enable_gqa=gqa)
        else:
            # a 4-D mask keeps the fused CPU kernel (a 3-D one falls back to the math path)
            y = F.scaled_dot_product_attention(
                q, k, v, attn_mask=bias[None], dropout_p=p, enable_gqa=gqa
            )
        return merge_heads(y)  # (B, T, d)


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.fc = nn.Linear(cfg.d_model, cfg.mlp_ratio * cfg.d_model, bias=cfg.bias)
        self.proj = nn.Linear(cfg.mlp_ratio * cfg.d_model, cfg.d_model, bias=cfg.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.gelu(self.fc(x), approximate="tanh"))


class Block(nn.Module):
    """One layer, in pieces that every path calls, whatever attention runs in between.

    `project` (or `query`, when the keys and values are cached) gives q, k, v from the states h;
    an attention turns them into y (the model's: sdpa or naive; inference: chunked over a cache,
    or absorbed into S); `finish(h, y)` applies W_o, the residual and the MLP.
    """

    def __init__(self, cfg: GPTConfig, makes_kv: bool = True):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg, makes_kv)
        self.ln2 = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps, bias=cfg.bias)
        self.mlp = MLP(cfg)
        self.drop = nn.Dropout(cfg.dropout)

    def project(
        self, h: torch.Tensor, kv: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q (B, T, d) and k, v (B, T, kv_dim) of states h: made from LN1(h), or `kv` if given."""
        return self.attn.project(self.ln1(h), kv)

    def query(self, h: torch.Tensor) -> torch.Tensor:
        """q (B, T, d) of states h (B, T, d), for a layer whose keys and values are cached."""
        return self.attn.query(self.ln1(h))

    def finish(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The rest of the layer for states h (..., d), given their attention y (..., d)."""
        h = h + self.drop(self.attn.proj(y))  # W_o, residual
        del y  # not held through the MLP: the caller passes it as a temporary
        return h + self.drop(self.mlp(self.ln2(h)))

    def forward(
        self, h, kv=None, rope=None, bias=None, naive=False, keep_kv=False
    ) -> tuple[torch.Tensor, tuple | None]:
        """The new states h (B, T, d); with `keep_kv`, the keys and values the attention used
        (before RoPE), which the next layers of a sharing group reuse (CLA), else None.

        k and v are views of the fused q|k|v projection: returned (or held in a local) they keep
        that whole (B, T, d + 2 kv_dim) buffer alive through the MLP, so they are temporaries
        unless a later layer needs them.
        """
        if not keep_kv:
            return self.finish(h, self.attn(*self.project(h, kv), rope, bias, naive)), None
        q, k, v = self.project(h, kv)
        return self.finish(h, self.attn(q, k, v, rope, bias, naive)), (k, v)


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos_emb = (
            nn.Embedding(cfg.context_length, cfg.d_model) if cfg.position == "learned" else None
        )
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg, cfg.makes_kv(i)) for i in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps, bias=cfg.bias)
        self.head = None if cfg.tie_weights else nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.position == "alibi":
            self.register_buffer("alibi_slopes", alibi_slopes(cfg.n_head), persistent=False)
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2: scale residual projections by depth
            if name.endswith("proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # -- the pieces every path (training, the references, fast inference) shares --

    def embed(self, idx: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Initial states x0 for tokens at positions start .. start+T-1, (B, T, d)."""
        T = idx.shape[1]
        if start + T > self.cfg.context_length and self.cfg.position == "learned":
            raise ConfigError(
                "context_length",
                f"sequence of {start + T} tokens exceeds the learned position table "
                f"({self.cfg.context_length}); extend the positions first",
            )
        x = self.tok_emb(idx)
        if self.pos_emb is not None:
            x = x + self.pos_emb(torch.arange(start, start + T, device=idx.device))
        return self.drop(x)

    def norm_x0(self, x0: torch.Tensor) -> torch.Tensor:
        """N(x0): the parameter-free normalisation every InAttention layer reads."""
        return F.layer_norm(x0, (self.cfg.d_model,), eps=self.cfg.norm_eps)

    def inattn_kv_weight(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """All layers' W_k, W_v stacked: (L * 2d, d) and (L * 2d,)."""
        ws, bs = zip(*(b.attn.kv_weight() for b in self.blocks), strict=True)
        return torch.cat(ws), None if bs[0] is None else torch.cat(bs)

    def inattn_kv(self, x0: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Keys and values of every layer from N(x0) in one matmul: L pairs of (B, T, d)."""
        kv = F.linear(self.norm_x0(x0), *self.inattn_kv_weight())  # (B, T, L*2d)
        parts = kv.split(self.cfg.d_model, dim=-1)
        return [(parts[2 * i], parts[2 * i + 1]) for i in range(self.cfg.n_layer)]

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        h = self.ln_f(h)
        return F.linear(h, self.tok_emb.weight) if self.head is None else self.head(h)

    def position_context(self, T: int, device, dtype):
        """(rope tables, alibi bias) for a full causal forward of length T; None where unused."""
        pos = torch.arange(T, device=device)
        rope = rope_cos_sin(self.cfg, pos, dtype) if self.cfg.position == "rope" else None
        bias = (
            alibi_bias(self.alibi_slopes, pos, pos, dtype) if self.cfg.position == "alibi" else None
        )
        return rope, bias

    def forward(
        self, idx: torch.Tensor, last_only: bool = False, naive: bool = False
    ) -> torch.Tensor:
        """Logits (B, T, vocab), or (B, 1, vocab) for the last position when `last_only`.

        `naive`: every layer's attention by materialised scores (the quadratic baseline).
        """
        h = self.embed(idx)  # x0; a dense model needs it only as the first layer's input
        rope, bias = self.position_context(idx.shape[1], idx.device, h.dtype)
        kvs = self.inattn_kv(h) if self.cfg.arch == "inattn" else None
        kv = None
        for i, block in enumerate(self.blocks):
            if kvs is not None:  # InAttention: this layer's keys and values from N(x0)
                kv = kvs[i]
            elif block.attn.makes_kv:  # dense: made from this layer's input, and reused by
                kv = None  # the next kv_share - 1 layers (CLA)
            h, kv = block(h, kv, rope, bias, naive, keep_kv=self.reuses_kv(i + 1))
        return self.logits(h[:, -1:] if last_only else h)

    def reuses_kv(self, layer: int) -> bool:
        """Whether `layer` attends with an earlier layer's keys and values (dense, CLA)."""
        return (
            self.cfg.arch == "dense"
            and layer < self.cfg.n_layer
            and not self.blocks[layer].attn.makes_kv
        )
