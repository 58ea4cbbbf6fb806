"""Input checks and small tensor helpers shared by every inference path."""

from __future__ import annotations

import torch
from torch import nn

from inattn.errors import ConfigError
from inattn.model import GPT, rope_cos_sin

DEFAULT_CHUNK = 1024  # keys per online-softmax step: the workspace is O(chunk x H), not O(T x H)


def check_chunk(chunk: int | None) -> None:
    if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1):
        raise ConfigError("chunk", f"chunk must be a positive integer or None, got {chunk!r}")


def check_prompt(model: GPT, idx: torch.Tensor) -> None:
    """A (B, T) batch of token ids, T >= 1; with learned positions T must fit the table."""
    if idx.dim() != 2 or idx.shape[1] == 0 or idx.is_floating_point():
        raise ConfigError(
            "prompt",
            f"expected a (batch, length) tensor of token ids with at least one token, "
            f"got {idx.dtype} of shape {tuple(idx.shape)}",
        )
    T, limit = idx.shape[1], model.cfg.context_length
    if model.cfg.position == "learned" and T > limit:
        raise ConfigError(
            "context_length",
            f"prompt of {T} tokens exceeds context_length={limit}: the learned position table "
            "has no row beyond it (prompt too long)",
        )


def model_dtype(model: nn.Module) -> torch.dtype:
    return model.tok_emb.weight.dtype


def chunks(n: int, chunk: int | None) -> list[tuple[int, int]]:
    """[(start, end)] covering 0..n-1 in steps of `chunk` (one piece when chunk is None)."""
    step = n if chunk is None else chunk
    return [(j, min(j + step, n)) for j in range(0, n, step)]


def ensure_capacity(buf: torch.Tensor, dim: int, needed: int) -> torch.Tensor:
    """`buf` if it has `needed` slots along `dim`, else a copy with at least twice the slots.

    Doubling keeps appends O(1) amortised; generation preallocates the exact size, so this only
    runs when a caller decodes past the capacity it asked for.
    """
    cap = buf.shape[dim]
    if needed <= cap:
        return buf
    shape = list(buf.shape)
    shape[dim] = max(needed, 2 * cap)
    grown = buf.new_empty(shape)
    grown.narrow(dim, 0, cap).copy_(buf)
    return grown


def rope_tables(
    model: GPT, start: int, end: int, device: torch.device, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """RoPE cos/sin for positions start..end-1, (end - start, head_dim); None without RoPE."""
    if model.cfg.position != "rope":
        return None
    return rope_cos_sin(model.cfg, torch.arange(start, end, device=device), dtype)
