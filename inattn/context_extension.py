"""Extending a trained model's positions from its context T0 to a longer T1 (spec, section 4.3).

    learned  "interpolate" (default): the table is stretched from T0 to T1 rows by linear
             interpolation; rows 0 and T1-1 are exactly the old rows 0 and T0-1.
             "copy": the first T0 rows are kept as they are and the new rows repeat row T0-1,
             so a prompt of at most T0 tokens gives exactly the outputs it gave before.
    rope     "rope_scale" (default): position interpolation, positions are divided by T1/T0 more,
             so position T1 * p / T0 gets the rotation p had. "none": RoPE left as it is.
    alibi    nothing to do: the bias is a function of distance and works at any length.
    none     nothing to do.

Extend before building an optimiser: a learned table is replaced by a new parameter.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from torch import nn

from inattn.errors import ConfigError
from inattn.model import GPT, GPTConfig

METHODS = {
    "learned": ("interpolate", "copy"),
    "rope": ("rope_scale", "none"),
    "alibi": ("none",),
    "none": ("none",),
}


def resolve_method(position: str, method: str) -> str:
    """The concrete method for a position type; "auto" picks the first listed in METHODS."""
    allowed = METHODS[position]
    if method == "auto":
        return allowed[0]
    if method not in allowed:
        raise ConfigError(
            "method",
            f"{method!r} does not apply to {position} positions; choose one of "
            f"{('auto', *allowed)}",
        )
    return method


def extended_config(cfg: GPTConfig, new_length: int, method: str = "auto") -> GPTConfig:
    """A copy of `cfg` for context `new_length` (and the RoPE scale the method asks for)."""
    if isinstance(new_length, bool) or not isinstance(new_length, int):
        raise ConfigError("context_length", f"new length must be an integer, got {new_length!r}")
    if new_length < cfg.context_length:
        raise ConfigError(
            "context_length",
            f"cannot shorten the context from {cfg.context_length} to {new_length}",
        )
    method = resolve_method(cfg.position, method)
    scale = cfg.rope_scale
    if method == "rope_scale":
        scale = cfg.rope_scale * new_length / cfg.context_length
    return replace(cfg, context_length=new_length, rope_scale=scale)


def extend_table(table: torch.Tensor, new_length: int, method: str = "interpolate") -> torch.Tensor:
    """A learned position table (T0, d) grown to (T1, d); see the module docstring."""
    old_length = table.shape[0]
    if method == "copy":
        tail = table[-1:].expand(new_length - old_length, -1)
        return torch.cat([table, tail]).clone()
    if method != "interpolate":
        raise ConfigError("method", f"unknown table method {method!r}")
    if new_length == 1:  # then old_length == 1 too
        return table.clone()
    # source position of row j is j * (T0-1) / (T1-1), split in integers so endpoints are exact
    j = torch.arange(new_length, device=table.device)
    scaled = j * (old_length - 1)
    lo = scaled // (new_length - 1)
    hi = (lo + 1).clamp(max=old_length - 1)
    w = ((scaled % (new_length - 1)).to(torch.float64) / (new_length - 1))[:, None]
    wide = table.to(torch.float64)
    return ((1 - w) * wide[lo] + w * wide[hi]).to(table.dtype)


def extend_context(model: GPT, new_length: int, method: str = "auto") -> GPT:
    """Grow `model`'s context to `new_length` in place (config included); returns the model."""
    cfg = model.cfg
    new = extended_config(cfg, new_length, method)
    method = resolve_method(cfg.position, method)
    if model.pos_emb is not None:
        old = model.pos_emb.weight
        emb = nn.Embedding(new_length, cfg.d_model, device=old.device, dtype=old.dtype)
        with torch.no_grad():
            emb.weight.copy_(extend_table(old.detach(), new_length, method))
        emb.weight.requires_grad_(old.requires_grad)
        model.pos_emb = emb
    # every module holds this same config object, so updating it updates them all
    cfg.context_length, cfg.rope_scale = new.context_length, new.rope_scale
    return model


def extend_state(
    state: dict[str, torch.Tensor],
    model_cfg: dict[str, Any],
    new_length: int,
    method: str = "auto",
    prefix: str = "model.",
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The same change on a checkpoint: (state dict, GPTConfig dict) for context `new_length`.

    `prefix` is what precedes the model's own parameter names (Lightning's "model.").
    """
    cfg = GPTConfig(**model_cfg)
    new = extended_config(cfg, new_length, method)
    state = dict(state)
    key = f"{prefix}pos_emb.weight"
    if cfg.position == "learned":
        state[key] = extend_table(state[key], new_length, resolve_method(cfg.position, method))
    return state, new.to_dict()
