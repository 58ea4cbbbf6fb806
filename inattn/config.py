"""The Hydra config tree: where it lives, its resolvers, and the field checks every app uses.

A training run's own settings are turned into typed, checked pieces in inattn.training.config.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from inattn.errors import ConfigError
from inattn.model import gqa_heads


def find_conf_dir() -> Path:
    """The Hydra config tree: the repository's `conf/` when running from a checkout (so edits
    there take effect), else the copy an installed package carries as `inattn/conf`."""
    package = Path(__file__).resolve().parent
    checkout = package.parent / "conf"
    return checkout if (checkout / "train.yaml").is_file() else package / "conf"


CONF_DIR = find_conf_dir()

# `${inattn.cwd:}`: the folder the command runs in (paths.root). Hydra's own `${hydra:runtime.cwd}`
# resolves only inside a job, but a sweep's folder (hydra.sweep.dir) is resolved before any job.
if not OmegaConf.has_resolver("inattn.cwd"):
    OmegaConf.register_new_resolver("inattn.cwd", os.getcwd)

# conf/arch/gqa.yaml: `n_kv_head: ${gqa_heads:${model.n_head}}`, one rule for every size
OmegaConf.register_new_resolver("gqa_heads", gqa_heads, replace=True)


def to_dict(cfg: DictConfig | Mapping) -> dict[str, Any]:
    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    return dict(cfg)


def check_positive(cfg: DictConfig, key: str, allow_zero: bool = False) -> float:
    """The number at `key`, refused unless > 0 (or >= 0 with `allow_zero`)."""
    value = OmegaConf.select(cfg, key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(key, f"{key} must be a number, got {value!r}")
    ok = value >= 0 if allow_zero else value > 0
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(key, f"{key} must be {bound}, got {value}")
    return value


def check_integer(cfg: DictConfig, key: str, minimum: int) -> int:
    """The integer at `key`, refused below `minimum`."""
    value = OmegaConf.select(cfg, key)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(key, f"{key} must be an integer >= {minimum}, got {value!r}")
    return value
