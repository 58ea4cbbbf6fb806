"""Starting a run from trained weights, at the same or a longer context (fine-tuning).

`init_from` names one of:
    an inattn-train checkpoint (last.ckpt): its shape must be the run's (size, position, ...);
    a Hugging Face model folder: a GPT-2 checkpoint (config.json + model.safetensors or
        pytorch_model.bin) or a folder inattn-export wrote; the folder defines the shape, and a
        size or shape key given on the command line that says otherwise is an error;
    a hub id such as `gpt2` (the hub cache, or a download when online).
A folder's tokenizer (tokenizer.json, or vocab.json + merges.txt) tokenizes the run's data.
GPT-2 weights load into either arch: both variants own the same parameters. So does an inattn-train
checkpoint of a multi-head dense model (uptraining it into InAttention), and the reverse.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from inattn.checkpoints.hf_folder import (
    HFCheckpoint,
    is_model_folder,
    open_folder,
    resolve,
    tokenizer_file,
)
from inattn.checkpoints.io import CheckpointError, check_shape
from inattn.checkpoints.pretrained import LoadedModel, load_model
from inattn.context_extension import extend_context
from inattn.model import GPT, GPTConfig

# Command-line keys that set part of the shape, and the GPTConfig fields they set.
SHAPE_KEYS = {
    "size": ("n_layer", "n_head", "d_model"),
    "model.n_layer": ("n_layer",),
    "model.n_head": ("n_head",),
    "model.d_model": ("d_model",),
    "model.mlp_ratio": ("mlp_ratio",),
    "position": ("position",),
    "model.position": ("position",),
    "model.bias": ("bias",),
    "model.tie_weights": ("tie_weights",),
    "model.norm_eps": ("norm_eps",),
}
RUN_OWNED = ("arch", "dropout", "context_length")  # what a folder's config does not decide


@dataclass
class Source:
    """What `init_from` names: a model folder (`folder`), or else an inattn checkpoint file."""

    path: Path
    folder: HFCheckpoint | None

    def run_config(self, cfg: GPTConfig) -> GPTConfig:
        """The run's model config: a folder's shape, the run's own arch, dropout and context
        (a learned table never shorter than the folder's: GPT-2 keeps its 1,024 positions)."""
        if self.folder is None:
            return cfg
        if cfg.vocab_size > self.folder.cfg.vocab_size:  # cfg's is the data tokenizer's
            raise CheckpointError(
                "tokenizer.vocab_size",
                f"the data's tokenizer has {cfg.vocab_size} ids, more than the "
                f"{self.folder.cfg.vocab_size} rows of {self.path}'s embedding",
            )
        shape = {k: v for k, v in self.folder.cfg.to_dict().items() if k not in RUN_OWNED}
        context = max(cfg.context_length, self.folder.cfg.context_length)
        return dataclasses.replace(cfg, **shape, context_length=context)

    def tokenizer_options(self, options: dict[str, Any], cache: str | Path) -> dict[str, Any]:
        """The data's tokenizer options: the folder's tokenizer unless tokenizer.path is given."""
        if self.folder is None or options.get("path"):
            return options
        path = tokenizer_file(self.folder, Path(cache))
        return options if path is None else {**options, "path": str(path)}


def open_source(init_from: str | Path) -> Source:
    """The checkpoint file or model folder `init_from` names (a hub id resolved), checked."""
    path = resolve(init_from, "init_from")
    if path.is_dir():
        if not is_model_folder(path):
            raise CheckpointError(
                "init_from",
                f"{path} is a folder but not a Hugging Face model folder (no config.json)",
            )
        return Source(path, open_folder(path, "init_from"))
    return Source(path, None)


def given_overrides() -> set[str]:
    """The config keys this command line set (Hydra's task overrides); none outside a Hydra job."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return set()
    return {o.split("=", 1)[0].lstrip("+~") for o in HydraConfig.get().overrides.task}


def check_source(cfg: DictConfig, given: set[str]) -> Source | None:
    """`init_from` opened, and refused when a shape key on the command line contradicts the
    folder's config.json; None without `init_from`."""
    if not cfg.get("init_from"):
        return None
    source = open_source(cfg.init_from)
    if source.folder is None:
        return source
    folder = source.folder.cfg
    for key, fields in SHAPE_KEYS.items():
        if key not in given:
            continue
        for name in fields:
            asked = cfg.model.get(name)
            if asked != getattr(folder, name):
                raise CheckpointError(
                    key,
                    f"{source.path} defines {name}={getattr(folder, name)!r} but this run asks for "
                    f"{name}={asked!r}: a model folder sets the shape, drop {key}=... or match it",
                )
    return source


def load_for(cfg: GPTConfig, source: str | Path | Source, method: str = "auto") -> LoadedModel:
    """The source's model, checked against `cfg` and extended to its context length."""
    if not isinstance(source, Source):
        source = open_source(source)
    if source.folder is not None:
        loaded = load_folder(cfg, source.folder)
    else:
        loaded = load_model(source.path, field="init_from")
    old = loaded.cfg
    if old.arch != cfg.arch:
        loaded = convert_arch(loaded, cfg.arch)
        old = loaded.cfg
    check_shape(old.to_dict(), cfg.to_dict(), source.path, field="init_from")
    if old.context_length < cfg.context_length:
        extend_context(loaded.model, cfg.context_length, method)
    return loaded


def same_tensors(cfg: GPTConfig) -> bool:
    """Multi-head dense and InAttention own the same tensors (only where K/V are read differs)."""
    return cfg.n_kv_head in (None, cfg.n_head) and cfg.kv_share == 1


def convert_arch(loaded: LoadedModel, arch: str) -> LoadedModel:
    """The same weights in the other arch: uptraining a dense model into InAttention (or back).

    Only multi-head dense models convert: GQA, MQA and CLA hold other key/value tensors.
    """
    old = loaded.cfg
    if not same_tensors(old):
        raise CheckpointError(
            "arch",
            f"init_from is a {old.arch} checkpoint with n_kv_head={old.n_kv_head}, "
            f"kv_share={old.kv_share}: its key/value tensors do not fit arch={arch}",
        )
    model = GPT(dataclasses.replace(old, arch=arch))
    model.load_state_dict(loaded.model.state_dict())
    return LoadedModel(model.eval(), loaded.tokenizer, loaded.checkpoint)


def load_folder(cfg: GPTConfig, folder: HFCheckpoint) -> LoadedModel:
    """A folder's weights in a model of the run's arch (GPT-2: either) and the folder's shape."""
    arch = cfg.arch if folder.kind == "gpt2" else folder.cfg.arch
    model = folder.model(dataclasses.replace(folder.cfg, arch=arch))
    return LoadedModel(model, folder.tokenizer(), {})


def initial_config(cfg: GPTConfig, loaded: LoadedModel) -> GPTConfig:
    """`cfg` with the position settings the extended checkpoint needs (RoPE scale, table size)."""
    return dataclasses.replace(
        cfg, rope_scale=loaded.cfg.rope_scale, context_length=loaded.cfg.context_length
    )


def copy_weights(model: GPT, loaded: LoadedModel) -> None:
    model.load_state_dict(loaded.model.state_dict())
