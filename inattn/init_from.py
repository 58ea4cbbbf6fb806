"""Starting a run from a trained checkpoint, at the same or a longer context (fine-tuning)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from inattn.errors import ConfigError
from inattn.model import GPT, GPTConfig
from inattn.positions import extend_context
from inattn.pretrained import LoadedModel, load_model

SHAPE = (
    "n_layer",
    "n_head",
    "d_model",
    "vocab_size",
    "mlp_ratio",
    "position",
    "bias",
    "tie_weights",
)


def load_for(cfg: GPTConfig, path: str | Path, method: str = "auto") -> LoadedModel:
    """The checkpoint's model, checked against `cfg` and extended to its context length."""
    loaded = load_model(path, field="init_from")
    old = loaded.cfg
    if old.arch != cfg.arch:
        raise ConfigError(
            "arch", f"init_from is a {old.arch} checkpoint but this run has arch={cfg.arch}"
        )
    for key in SHAPE:
        if getattr(old, key) != getattr(cfg, key):
            raise ConfigError(
                "init_from",
                f"checkpoint has {key}={getattr(old, key)!r}, this run {getattr(cfg, key)!r}",
            )
    if old.context_length < cfg.context_length:
        extend_context(loaded.model, cfg.context_length, method)
    return loaded


def initial_config(cfg: GPTConfig, loaded: LoadedModel) -> GPTConfig:
    """`cfg` with the position settings the extended checkpoint needs (RoPE scale, table size)."""
    return dataclasses.replace(
        cfg, rope_scale=loaded.cfg.rope_scale, context_length=loaded.cfg.context_length
    )


def copy_weights(model: GPT, loaded: LoadedModel) -> None:
    model.load_state_dict(loaded.model.state_dict())
