"""From a composed Hydra config to the objects the library takes, with the checks users need."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from inattn.errors import ConfigError
from inattn.model import GPTConfig, gqa_heads


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


def model_config(cfg: DictConfig, vocab_size: int) -> GPTConfig:
    """GPTConfig from the `model` node; keys that are not GPTConfig fields (`size`, `variant`)
    are skipped."""
    fields = {f.name for f in dataclasses.fields(GPTConfig)}
    kwargs = {k: v for k, v in to_dict(cfg.model).items() if k in fields}
    return GPTConfig(**{**kwargs, "vocab_size": vocab_size})


def check_positive(cfg: DictConfig, key: str, allow_zero: bool = False) -> None:
    value = OmegaConf.select(cfg, key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(key, f"{key} must be a number, got {value!r}")
    ok = value >= 0 if allow_zero else value > 0
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(key, f"{key} must be {bound}, got {value}")


def check_integer(cfg: DictConfig, key: str, minimum: int) -> None:
    value = OmegaConf.select(cfg, key)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(key, f"{key} must be an integer >= {minimum}, got {value!r}")


SEED_RANGE = (0, 2**32 - 1)  # what Lightning's seed_everything accepts
# Lightning's accepted `precision` values (its `_PRECISION_INPUT`), written as a user types them;
# `auto` is ours (inattn.train.resolve_precision). Kept here, not imported: lightning is a slow
# import for a command line that is only being checked.
PRECISIONS = (
    "auto", "32-true", "32", "16-mixed", "16", "bf16-mixed", "bf16", "16-true", "bf16-true",
    "64-true", "64", "transformer-engine", "transformer-engine-float16",
)  # fmt: skip


def check_seed(cfg: DictConfig) -> None:
    low, high = SEED_RANGE
    seed = cfg.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or not low <= seed <= high:
        raise ConfigError("seed", f"seed must be an integer in [{low}, {high}], got {seed!r}")


def check_precision(cfg: DictConfig) -> None:
    precision = str(cfg.trainer.precision)
    if precision not in PRECISIONS:
        raise ConfigError(
            "trainer.precision", f"choose one of {', '.join(PRECISIONS)}; got {precision!r}"
        )


def check_run_labels(cfg: DictConfig) -> None:
    """`group` is one name and `tags` a list of names (a bare string would become its letters)."""
    group = cfg.get("group")
    if group is not None and not isinstance(group, (str, int)):
        raise ConfigError("group", f"group must be one name, got {group!r}")
    tags = cfg.get("tags")
    if tags is not None and not OmegaConf.is_list(tags):
        raise ConfigError("tags", f"tags must be a list, e.g. tags=[a,b]; got {tags!r}")


def check_betas(cfg: DictConfig) -> None:
    betas = cfg.optim.betas
    ok = OmegaConf.is_list(betas) and len(betas) == 2
    ok = ok and all(isinstance(b, (int, float)) and 0 <= b < 1 for b in betas)
    if not ok:
        raise ConfigError("optim.betas", f"optim.betas must be two numbers in [0, 1), got {betas}")


def check_resume_value(resume: Any) -> None:
    """`false`, `auto`, or the path of a checkpoint file."""
    if resume is False or resume is None or resume == "auto":
        return
    if resume is True or not isinstance(resume, str):
        raise ConfigError(
            "resume", f"resume must be false, auto or a checkpoint path, got {resume!r}"
        )
    if not Path(resume).expanduser().is_file():
        raise ConfigError("resume", f"no checkpoint file at {resume}")


def check_positions(cfg: DictConfig) -> None:
    """A learned position table cannot serve sequences longer than itself (no extension here)."""
    table = cfg.model.context_length
    if cfg.model.position == "learned" and isinstance(table, int) and cfg.context_length > table:
        raise ConfigError(
            "context_length",
            f"context_length={cfg.context_length} is beyond the learned position table "
            f"(model.context_length={table}), which training does not extend: raise "
            "model.context_length or use position=rope or position=alibi",
        )


def check_logger(cfg: DictConfig) -> None:
    wb = cfg.logger.wandb
    if not wb.enabled and wb.mode != "disabled":
        raise ConfigError(
            "logger.wandb.mode",
            f"logger.wandb.mode={wb.mode} but this logger option has W&B off: use logger=wandb",
        )
    if wb.mode not in ("offline", "online", "disabled"):
        raise ConfigError(
            "logger.wandb.mode", f"choose offline, online or disabled, got {wb.mode!r}"
        )
    check_positive(cfg, "logger.wandb.init_timeout")


def validate_train_config(cfg: DictConfig) -> None:
    """Refuse a training config that cannot work, before any data or model is built."""
    for key in ("context_length", "batch_size", "optim.lr", "trainer.max_steps"):
        check_positive(cfg, key)
    for key in ("context_length", "batch_size", "trainer.max_steps"):
        check_integer(cfg, key, 1)
    for key in ("optim.weight_decay", "optim.warmup_steps", "optim.grad_clip"):
        check_positive(cfg, key, allow_zero=True)
    check_positive(cfg, "optim.eps")
    check_betas(cfg)
    check_seed(cfg)
    check_precision(cfg)
    check_run_labels(cfg)
    if not 0.0 <= cfg.optim.min_lr_ratio <= 1.0:
        raise ConfigError("optim.min_lr_ratio", "optim.min_lr_ratio must be in [0, 1]")
    check_integer(cfg, "checkpoint.every_n_steps", 0)
    check_integer(cfg, "checkpoint.keep", -1)
    check_resume_value(cfg.get("resume", False))
    check_logger(cfg)
    model_config(cfg, vocab_size=max(int(cfg.tokenizer.get("vocab_size") or 1), 1))
    check_positions(cfg)
