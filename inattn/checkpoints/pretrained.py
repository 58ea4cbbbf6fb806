"""Loading a trained model, and the tokenizer that travels with it, from an inattn-train
checkpoint: what inattn-generate, inattn-export, the evaluations and `init_from` start from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from inattn.checkpoints.io import CheckpointError, model_state, read_checkpoint
from inattn.errors import ConfigError
from inattn.model import GPT, GPTConfig


@dataclass
class LoadedModel:
    model: GPT
    tokenizer: Tokenizer | None
    checkpoint: dict[str, Any]

    @property
    def cfg(self) -> GPTConfig:
        return self.model.cfg


def load_model(path: str | Path, field: str = "ckpt") -> LoadedModel:
    """The GPT of an inattn-train checkpoint, in eval mode, with its tokenizer when saved; a
    checkpoint whose config or tensors do not make a model is a `CheckpointError` too."""
    ckpt = read_checkpoint(path, field)
    try:
        model = GPT(GPTConfig(**ckpt["hyper_parameters"]["model"]))
        model.load_state_dict(model_state(ckpt))
    except (TypeError, RuntimeError, ConfigError) as err:  # unknown fields, missing tensors
        reason = str(err).strip().splitlines()[-1].strip()  # torch's: a header, then the keys
        raise CheckpointError(field, f"{path} does not make a model: {reason}") from None
    tokenizer_json = ckpt.get("inattn", {}).get("tokenizer_json")
    tokenizer = Tokenizer.from_str(tokenizer_json) if tokenizer_json else None
    return LoadedModel(model.eval(), tokenizer, ckpt)
