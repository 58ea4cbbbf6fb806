"""One API over every inference mode, so a benchmark times them all the same way.

    logits, cache = prefill(model, idx, mode)     # time to first token; logits: (B, vocab)
    logits, cache = decode_step(model, tok, cache) # one new token per sequence; tok: (B,)

| mode      | archs         | carried between steps                      | bytes per token       |
|-----------|---------------|--------------------------------------------|-----------------------|
| `state`   | inattn        | S = N(x0), absorbed projections            | d x b                 |
| `kvcache` | dense, inattn | each sharing group's keys and values       | 2 G n_kv hd x b       |
| `sdpa`    | dense, inattn | token ids; the plain full forward per step | 8 (int64 ids)         |
| `naive`   | dense, inattn | token ids; full forward with T x T scores  | 8 (int64 ids)         |

b: bytes per number; G = ceil(L / kv_share) groups of layers sharing keys and values (L without
CLA, and always for InAttention); n_kv key/value heads (n_head without GQA/MQA), so plain
multi-head attention caches 2 L d x b.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from inattn.errors import ConfigError
from inattn.inference.common import DEFAULT_CHUNK
from inattn.inference.full import TokenCache, decode_tokens, prefill_tokens
from inattn.inference.kvcache import KVCache, decode_kv, prefill_kv
from inattn.inference.state import InAttentionState, decode_state, prefill_state
from inattn.model import ARCHS, GPT, GPTConfig

Cache = InAttentionState | KVCache | TokenCache
Prefill = Callable[[GPT, torch.Tensor, int | None, int | None], tuple[torch.Tensor, Cache]]
Decode = Callable[[GPT, torch.Tensor, Cache], tuple[torch.Tensor, Cache]]


@dataclass(frozen=True)
class Mode:
    name: str
    archs: tuple[str, ...]
    summary: str
    prefill: Prefill  # (model, idx, capacity, chunk) -> (logits (B, vocab), cache)
    decode: Decode  # (model, token (B,), cache) -> (logits (B, vocab), cache)


def _recompute(name: str) -> Prefill:
    return lambda model, idx, capacity, chunk: prefill_tokens(model, idx, name)


MODES: dict[str, Mode] = {
    "naive": Mode(
        "naive",
        ARCHS,
        "full forward, materialised T x T scores and explicit softmax, rerun every step",
        _recompute("naive"),
        decode_tokens,
    ),
    "sdpa": Mode(
        "sdpa",
        ARCHS,
        "the plain full forward (fused attention), rerun every step",
        _recompute("sdpa"),
        decode_tokens,
    ),
    "kvcache": Mode(
        "kvcache",
        ARCHS,
        "per-layer keys and values cached (InAttention: projected from N(x0))",
        prefill_kv,
        decode_kv,
    ),
    "state": Mode(
        "state",
        ("inattn",),
        "S = N(x0) only; absorbed projections, chunked online softmax",
        prefill_state,
        decode_state,
    ),
}
DEFAULT_MODE = {"dense": "kvcache", "inattn": "state"}


def modes_for(arch: str) -> list[str]:
    """Mode names that apply to `arch`, in registry order."""
    return [name for name, mode in MODES.items() if arch in mode.archs]


def get_mode(model: GPT, mode: str | None) -> Mode:
    """The registry entry for `mode` (None: the architecture's default), checked against it."""
    arch = model.cfg.arch
    name = DEFAULT_MODE[arch] if mode is None else mode
    if name not in MODES:
        raise ConfigError("mode", f"unknown mode {name!r}; choose one of {tuple(MODES)}")
    if arch not in MODES[name].archs:
        raise ConfigError(
            "mode", f"mode {name!r} does not apply to arch={arch!r}; choose from {modes_for(arch)}"
        )
    return MODES[name]


def prefill(
    model: GPT,
    idx: torch.Tensor,
    mode: str | None = None,
    *,
    capacity: int | None = None,
    chunk: int | None = DEFAULT_CHUNK,
) -> tuple[torch.Tensor, Cache]:
    """Next-token logits (B, vocab) for a (B, T) context, and the cache to decode from.

    capacity: positions to reserve in the cache (default T; decoding past it grows the buffer).
    chunk: keys per online-softmax step, and positions per projection chunk (None: all at once).
    """
    return get_mode(model, mode).prefill(model, idx, capacity, chunk)


def decode_step(model: GPT, token: torch.Tensor, cache: Cache) -> tuple[torch.Tensor, Cache]:
    """Feed one token per sequence ((B,) or (B, 1)); logits (B, vocab) for the next one.

    The cache is updated in place and returned.
    """
    token = token.reshape(-1)
    return get_mode(model, cache.mode).decode(model, token, cache)


def state_bytes(cache: Cache) -> int:
    """Bytes of the tensors a cache holds between steps (its reserved capacity included)."""
    if isinstance(cache, InAttentionState):
        t = cache.s  # (B, capacity, d)
    elif isinstance(cache, KVCache):
        t = cache.kv  # (groups, 2, B, kv_heads, capacity, hd)
    else:
        t = cache.idx  # (B, T) token ids
    return t.numel() * t.element_size()


def state_row_bytes(d_model: int, dtype: torch.dtype) -> int:
    """What InAttention's state S = N(x0) holds per token: one d-wide row of `dtype` elements."""
    return d_model * dtype.itemsize


def cache_bytes_per_token(cfg: GPTConfig, mode: str, dtype: torch.dtype) -> int:
    """What one more position adds to a mode's cache, from the shapes alone."""
    size, id_size = dtype.itemsize, torch.long.itemsize
    per_token = {
        "state": state_row_bytes(cfg.d_model, dtype),
        "kvcache": 2 * cfg.kv_groups * cfg.kv_dim * size,  # 2 L d without GQA or CLA
        "naive": id_size,
        "sdpa": id_size,
    }
    if mode not in per_token:
        raise ConfigError("mode", f"unknown mode {mode!r}; choose one of {tuple(MODES)}")
    return per_token[mode]
