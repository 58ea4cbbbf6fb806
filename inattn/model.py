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
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from inattn.errors import ConfigError

ARCHS = ("dense", "inattn")
POSITIONS = ("learned", "rope", "alibi", "none")


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

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

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


class CausalSelfAttention(nn.Module):
    """Multi-head causal attention. `qkv` holds W_q, W_k, W_v stacked, as in GPT-2."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=cfg.bias)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)

    def q_weight(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        d = self.cfg.d_model
        return self.qkv.weight[:d], None if self.qkv.bias is None else self.qkv.bias[:d]

    def kv_weight(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        d = self.cfg.d_model
        return self.qkv.weight[d:], None if self.qkv.bias is None else self.qkv.bias[d:]

    def forward(
        self,
        a: torch.Tensor,
        kv: tuple[torch.Tensor, torch.Tensor] | None,
        rope: tuple[torch.Tensor, torch.Tensor] | None,
        bias: torch.Tensor | None,
    ) -> torch.Tensor:
        B, T, C = a.shape
        H, hd = self.cfg.n_head, self.cfg.head_dim
        if kv is None:  # dense: keys and values from this layer's own input
            q, k, v = self.qkv(a).split(C, dim=2)
        else:  # InAttention: keys and values were projected from N(x0) by the model
            q = F.linear(a, *self.q_weight())
            k, v = kv
        q = q.view(B, T, H, hd).transpose(1, 2)  # (B, H, T, hd)
        k = k.view(B, T, H, hd).transpose(1, 2)
        v = v.view(B, T, H, hd).transpose(1, 2)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        p = self.cfg.dropout if self.training else 0.0
        if bias is None:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        else:
            # a 4-D mask keeps the fused CPU kernel (a 3-D one falls back to the math path)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias[None], dropout_p=p)
        y = y.transpose(1, 2).reshape(B, T, C)  # (B, T, C)
        return self.proj(y)


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.fc = nn.Linear(cfg.d_model, cfg.mlp_ratio * cfg.d_model, bias=cfg.bias)
        self.proj = nn.Linear(cfg.mlp_ratio * cfg.d_model, cfg.d_model, bias=cfg.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.gelu(self.fc(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps, bias=cfg.bias)
        self.mlp = MLP(cfg)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, h, kv=None, rope=None, bias=None) -> torch.Tensor:
        h = h + self.drop(self.attn(self.ln1(h), kv, rope, bias))
        return h + self.drop(self.mlp(self.ln2(h)))


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos_emb = (
            nn.Embedding(cfg.context_length, cfg.d_model) if cfg.position == "learned" else None
        )
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
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

    def forward(self, idx: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """Logits (B, T, vocab), or (B, 1, vocab) for the last position when `last_only`."""
        x0 = self.embed(idx)
        rope, bias = self.position_context(idx.shape[1], idx.device, x0.dtype)
        kvs = self.inattn_kv(x0) if self.cfg.arch == "inattn" else [None] * self.cfg.n_layer
        h = x0
        for block, kv in zip(self.blocks, kvs, strict=True):
            h = block(h, kv, rope, bias)
        return self.logits(h[:, -1:] if last_only else h)
