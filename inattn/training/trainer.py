"""The Lightning Trainer of a run: its settings from conf/trainer, checked by Lightning itself
before any data or model is built, and the Trainer with this package's callbacks and plugins."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import Logger

from inattn import console
from inattn.checkpoints.saving import AtomicCheckpointIO
from inattn.errors import ConfigError
from inattn.training.config import RunConfig


def resolve_precision(precision: str, accelerator: str) -> str:
    """`auto`: bf16 autocast on GPUs that support it, full fp32 elsewhere."""
    if precision != "auto":
        return precision
    on_gpu = accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available()
    return "bf16-mixed" if on_gpu and torch.cuda.is_bf16_supported() else "32-true"


def trainer_kwargs(run: RunConfig) -> dict[str, Any]:
    """conf/trainer as `lightning.Trainer` takes it, with the settings this package relies on."""
    kwargs = dict(run.trainer.settings)
    kwargs["precision"] = resolve_precision(str(kwargs["precision"]), str(kwargs["accelerator"]))
    kwargs["gradient_clip_val"] = run.optim.grad_clip or None
    kwargs["check_val_every_n_epoch"] = None  # validate every val_check_interval steps
    kwargs["enable_checkpointing"] = False  # `Checkpoints` writes them
    # The train sampler shards itself by rank (the same global order for any number of
    # processes); every process validates the whole validation split.
    kwargs["use_distributed_sampler"] = False
    kwargs.setdefault("enable_model_summary", run.verbose)
    if kwargs["strategy"] == "fsdp":
        kwargs["strategy"] = fsdp_strategy()
    return kwargs


def progress_bar(run: RunConfig) -> list[console.TrainingBar]:
    """The one progress bar of a run (Lightning refuses a bar when `enable_progress_bar` is off)."""
    if not run.trainer.settings.get("enable_progress_bar", True):
        return []
    return [console.TrainingBar(verbose=run.verbose)]


def fsdp_strategy() -> Any:
    """FSDP sharding each transformer block on its own (one unit for the whole model would
    gather every weight at once), with whole-model checkpoints that load anywhere."""
    from lightning.pytorch.strategies import FSDPStrategy

    from inattn.model import Block

    return FSDPStrategy(auto_wrap_policy={Block}, state_dict_type="full")


def check_trainer(kwargs: dict[str, Any]) -> None:
    """Lightning's own checks of the Trainer settings, run before any data or model is built.

    A throwaway Trainer is made with the run's settings (cheap: nothing starts). If Lightning
    refuses them, the key to blame is the first one that Lightning also refuses alone.
    """
    try:
        L.Trainer(**kwargs, logger=False)
    except Exception as err:  # ValueError, TypeError, MisconfigurationException, missing packages
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        key = blame(kwargs, reason)
        raise ConfigError(f"trainer.{key}" if key else "trainer", reason) from None


def blame(kwargs: dict[str, Any], reason: str) -> str:
    """The Trainer key an error is about: the one named by an unexpected-keyword error, else the
    first key Lightning refuses on its own, else the first key the message names."""
    for key in kwargs:
        if f"argument '{key}'" in reason:
            return key
    for key, value in kwargs.items():
        try:
            L.Trainer(**{"logger": False, "enable_checkpointing": False, key: value})
        except Exception:
            return key
    return next((key for key in kwargs if key in reason), "")


def build_trainer(
    run: RunConfig, run_dir: Path, loggers: list[Logger], callbacks: list[Callback]
) -> L.Trainer:
    """The run's Trainer: its settings made anew (a strategy object serves one Trainer), the
    given callbacks in order, then the progress bar; checkpoints written atomically."""
    return L.Trainer(
        **trainer_kwargs(run),
        logger=loggers,
        callbacks=[*callbacks, *progress_bar(run)],
        plugins=[AtomicCheckpointIO()],
        default_root_dir=run_dir,
    )
