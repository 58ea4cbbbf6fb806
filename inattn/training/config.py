"""A training run's settings: the composed Hydra config turned, once, into typed pieces.

`RunConfig.from_cfg(cfg)` is the boundary. It checks every value a run reads (a bad one is a
`ConfigError` naming its field: one `error: <field>: ...` line and exit code 2 on the command
line) and hands out frozen pieces: the model (`GPTConfig`), the optimiser, the data, the
loggers, the Lightning Trainer and the checkpoints. Past it, nothing reads the raw config.
The Trainer's own keys are checked by Lightning itself (`inattn.training.trainer.check_trainer`),
which is a slow import for a command line that is only being checked, so that check runs first
thing in the job instead.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from inattn.config import check_integer, check_positive, to_dict
from inattn.data.options import data_options, tokenizer_options
from inattn.errors import ConfigError
from inattn.model import GPTConfig
from inattn.reporting.wandb_log import WANDB_MODES

SEED_RANGE = (0, 2**32 - 1)  # what Lightning's seed_everything accepts
# Lightning's accepted `precision` values (its `_PRECISION_INPUT`), written as a user types them;
# `auto` is ours (inattn.training.trainer.resolve_precision). Kept here, not imported: lightning
# is a slow import for a command line that is only being checked.
PRECISIONS = (
    "auto", "32-true", "32", "16-mixed", "16", "bf16-mixed", "bf16", "16-true", "bf16-true",
    "64-true", "64", "transformer-engine", "transformer-engine-float16",
)  # fmt: skip


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with warmup and cosine decay (conf/optim)."""

    lr: float
    weight_decay: float
    betas: tuple[float, float]
    eps: float
    warmup_steps: int
    min_lr_ratio: float
    grad_clip: float  # max global gradient norm; 0: no clipping

    def as_hparams(self) -> dict[str, Any]:
        """The plain dict the LightningModule stores in its checkpoints (betas as a list)."""
        return {**dataclasses.asdict(self), "betas": list(self.betas)}


@dataclass(frozen=True)
class DataConfig:
    """What the data module needs. `options` and `tokenizer` are conf/data and conf/tokenizer
    as given (checked by inattn.data.options, which fills no default the YAML does not hold)."""

    options: Mapping[str, Any]
    tokenizer: Mapping[str, Any]
    context_length: int
    batch_size: int
    num_workers: int
    cache_dir: str
    seed: int


@dataclass(frozen=True)
class WandbConfig:
    enabled: bool
    project: str
    entity: str | None
    mode: str  # offline | online | disabled
    init_timeout: float  # seconds; then CSV only, with one warning

    @property
    def active(self) -> bool:
        return self.enabled and self.mode != "disabled"


@dataclass(frozen=True)
class LoggerConfig:
    """The CSV log (always) and W&B: its settings, the run's group and its tags."""

    wandb: WandbConfig
    group: str | int | None
    tags: tuple[str, ...]


@dataclass(frozen=True)
class TrainerConfig:
    """conf/trainer, handed to `lightning.Trainer` as given; `max_steps`: the run's length."""

    settings: Mapping[str, Any]
    max_steps: int


@dataclass(frozen=True)
class CheckpointConfig:
    every_n_steps: int  # write checkpoints/last.ckpt every N steps (0: only at the end)
    keep: int  # also keep the newest N as step-N.ckpt (-1: all)


@dataclass(frozen=True)
class RunConfig:
    """Everything one training run reads, checked."""

    model: GPTConfig  # vocab_size is the tokenizer option's; the data's tokenizer decides it
    variant: str  # the arch option's name (dense, gqa, mqa, cla, inattn)
    size: str | None
    optim: OptimConfig
    data: DataConfig
    logger: LoggerConfig
    trainer: TrainerConfig
    checkpoint: CheckpointConfig
    seed: int
    resume: str | bool | None  # false, auto, or a checkpoint path
    init_extension: str  # how init_from's positions are extended to the run's context
    verbose: bool
    resolved: Mapping[str, Any]  # the whole config as plain data (Hydra's own node left out)

    @classmethod
    def from_cfg(cls, cfg: DictConfig) -> RunConfig:
        """The typed pieces of a composed `conf/train.yaml`; refuses a config that cannot work,
        before any data or model is built."""
        check_run_shape(cfg)
        optim = optim_config(cfg)
        seed = check_seed(cfg)
        precision = str(cfg.trainer.precision)
        if precision not in PRECISIONS:
            raise ConfigError(
                "trainer.precision", f"choose one of {', '.join(PRECISIONS)}; got {precision!r}"
            )
        check_run_labels(cfg)
        checkpoint = CheckpointConfig(
            every_n_steps=check_integer(cfg, "checkpoint.every_n_steps", 0),
            keep=check_integer(cfg, "checkpoint.keep", -1),
        )
        resume = check_resume_value(cfg.get("resume", False))
        wandb = wandb_config(cfg)
        data = data_config(cfg, seed)
        model = model_config(cfg, vocab_size=tokenizer_vocab(data.tokenizer))
        check_positions(model, data.context_length)
        variant = cfg.model.get("variant") or model.arch
        size = cfg.model.get("size")
        tags = run_tags(variant, size, data.context_length, model.position, cfg.get("tags"))
        return cls(
            model=model,
            variant=variant,
            size=size,
            optim=optim,
            data=data,
            logger=LoggerConfig(wandb, cfg.get("group"), tags),
            trainer=TrainerConfig(to_dict(cfg.trainer), int(cfg.trainer.max_steps)),
            checkpoint=checkpoint,
            seed=seed,
            resume=resume,
            init_extension=str(cfg.get("init_extension", "auto")),
            verbose=bool(cfg.get("verbose", False)),
            resolved=to_dict(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])),
        )


def check_run_shape(cfg: DictConfig) -> None:
    """Sequence length, batch size and run length: positive integers."""
    for key in ("context_length", "batch_size", "trainer.max_steps"):
        check_positive(cfg, key)
        check_integer(cfg, key, 1)
    check_integer(cfg, "num_workers", 0)


def optim_config(cfg: DictConfig) -> OptimConfig:
    """conf/optim, checked: rates and decays in range, two betas in [0, 1)."""
    check_known(cfg.optim, OptimConfig, "optim")
    check_positive(cfg, "optim.lr")
    for key in ("optim.weight_decay", "optim.warmup_steps", "optim.grad_clip"):
        check_positive(cfg, key, allow_zero=True)
    check_positive(cfg, "optim.eps")
    betas = cfg.optim.betas
    ok = OmegaConf.is_list(betas) and len(betas) == 2
    ok = ok and all(isinstance(b, (int, float)) and 0 <= b < 1 for b in betas)
    if not ok:
        raise ConfigError("optim.betas", f"optim.betas must be two numbers in [0, 1), got {betas}")
    ratio = cfg.optim.min_lr_ratio
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 <= ratio <= 1:
        raise ConfigError("optim.min_lr_ratio", "optim.min_lr_ratio must be in [0, 1]")
    return OptimConfig(**{**to_dict(cfg.optim), "betas": tuple(betas)})


def check_known(node: DictConfig, piece: type, prefix: str) -> None:
    """Refuse a key the typed piece has no field for (`+optim.x=...`): it would be ignored."""
    fields = {f.name for f in dataclasses.fields(piece)}
    for key in node:
        if key not in fields:
            raise ConfigError(f"{prefix}.{key}", f"unknown key; known keys: {sorted(fields)}")
    missing = sorted(fields - set(node))
    if missing:
        raise ConfigError(f"{prefix}.{missing[0]}", "missing: this setting has no default")


def check_seed(cfg: DictConfig) -> int:
    low, high = SEED_RANGE
    seed = cfg.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or not low <= seed <= high:
        raise ConfigError("seed", f"seed must be an integer in [{low}, {high}], got {seed!r}")
    return seed


def check_run_labels(cfg: DictConfig) -> None:
    """`group` is one name and `tags` a list of names (a bare string would become its letters)."""
    group = cfg.get("group")
    if group is not None and not isinstance(group, (str, int)):
        raise ConfigError("group", f"group must be one name, got {group!r}")
    tags = cfg.get("tags")
    if tags is not None and not OmegaConf.is_list(tags):
        raise ConfigError("tags", f"tags must be a list, e.g. tags=[a,b]; got {tags!r}")


def check_resume_value(resume: Any) -> str | bool | None:
    """`false`, `auto`, or the path of a checkpoint file."""
    if resume is False or resume is None or resume == "auto":
        return resume
    if resume is True or not isinstance(resume, str):
        raise ConfigError(
            "resume", f"resume must be false, auto or a checkpoint path, got {resume!r}"
        )
    if not Path(resume).expanduser().is_file():
        raise ConfigError("resume", f"no checkpoint file at {resume}")
    return resume


def wandb_config(cfg: DictConfig) -> WandbConfig:
    """conf/logger: W&B's mode must agree with the logger option that was chosen."""
    wb = cfg.logger.wandb
    check_known(wb, WandbConfig, "logger.wandb")
    if not wb.enabled and wb.mode != "disabled":
        raise ConfigError(
            "logger.wandb.mode",
            f"logger.wandb.mode={wb.mode} but this logger option has W&B off: use logger=wandb",
        )
    if wb.mode not in WANDB_MODES:
        raise ConfigError(
            "logger.wandb.mode", f"choose offline, online or disabled, got {wb.mode!r}"
        )
    check_positive(cfg, "logger.wandb.init_timeout")
    return WandbConfig(**to_dict(wb))


def data_config(cfg: DictConfig, seed: int) -> DataConfig:
    """conf/data and conf/tokenizer (checked as far as they can be without reading data)."""
    options, tokenizer = to_dict(cfg.data), to_dict(cfg.tokenizer)
    data_options(options)
    tokenizer_options(tokenizer)
    return DataConfig(
        options=options,
        tokenizer=tokenizer,
        context_length=cfg.context_length,
        batch_size=cfg.batch_size,
        num_workers=cfg.num_workers,
        cache_dir=str(cfg.paths.cache),
        seed=seed,
    )


def tokenizer_vocab(tokenizer: Mapping[str, Any]) -> int:
    """A vocabulary size to check the model shape with, before the data's tokenizer exists."""
    size = tokenizer.get("vocab_size")
    return size if isinstance(size, int) and not isinstance(size, bool) and size >= 1 else 1


def model_config(cfg: DictConfig, vocab_size: int) -> GPTConfig:
    """GPTConfig from the `model` node; keys that are not GPTConfig fields (`size`, `variant`)
    are skipped."""
    fields = {f.name for f in dataclasses.fields(GPTConfig)}
    kwargs = {k: v for k, v in to_dict(cfg.model).items() if k in fields}
    return GPTConfig(**{**kwargs, "vocab_size": vocab_size})


def check_positions(model: GPTConfig, context_length: int) -> None:
    """A learned position table cannot serve sequences longer than itself (no extension here)."""
    table = model.context_length
    if model.position == "learned" and context_length > table:
        raise ConfigError(
            "context_length",
            f"context_length={context_length} is beyond the learned position table "
            f"(model.context_length={table}), which training does not extend: raise "
            "model.context_length or use position=rope or position=alibi",
        )


def run_tags(
    variant: str, size: str | None, context_length: int, position: str, extra: Any
) -> tuple[str, ...]:
    """arch (the `arch` option: dense, gqa, mqa, cla, inattn), size, context length and position,
    plus any tags the user gave."""
    base = (variant, str(size), f"T{context_length}", position)
    return base + tuple(str(t) for t in extra or [])
