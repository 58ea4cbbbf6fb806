"""Loading a trained model (and the tokenizer that travels with it) from a Lightning checkpoint."""

from __future__ import annotations

import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer

from inattn.errors import DataError
from inattn.model import GPT, GPTConfig


@dataclass
class LoadedModel:
    model: GPT
    tokenizer: Tokenizer | None
    checkpoint: dict[str, Any]

    @property
    def cfg(self) -> GPTConfig:
        return self.model.cfg


def read_checkpoint(path: str | Path, field: str = "ckpt") -> dict[str, Any]:
    """The checkpoint dict; a missing, truncated or foreign file is a DataError naming it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(field, f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile) as err:
        raise DataError(
            field, f"cannot read checkpoint {path} (truncated or corrupt?): {err}"
        ) from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise DataError(field, f"{path} is not an inattn training checkpoint")
    return ckpt


def load_model(path: str | Path, field: str = "ckpt") -> LoadedModel:
    """The GPT of an inattn-train checkpoint, in eval mode, with its tokenizer when saved."""
    ckpt = read_checkpoint(path, field)
    model = GPT(GPTConfig(**ckpt["hyper_parameters"]["model"]))
    state = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items()}
    model.load_state_dict(state)
    tokenizer_json = ckpt.get("inattn", {}).get("tokenizer_json")
    tokenizer = Tokenizer.from_str(tokenizer_json) if tokenizer_json else None
    return LoadedModel(model.eval(), tokenizer, ckpt)
