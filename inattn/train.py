"""One training run: config -> data module -> Lightning module -> metrics.json and W&B.

A run folder holds one run. Run again in the same folder, it skips a run that already finished
(metrics.json) and, with `resume=auto`, continues the last checkpoint exactly: weights, optimizer,
LR schedule, RNG streams, data position and the W&B run.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig

from inattn import console
from inattn.checkpointing import FOLDER, LAST, AtomicCheckpointIO, Checkpoints, NumericalFault
from inattn.config import model_config, to_dict, validate_train_config
from inattn.data.module import TextDataModule
from inattn.errors import ConfigError
from inattn.init_from import (
    Source,
    check_source,
    copy_weights,
    given_overrides,
    initial_config,
    load_for,
)
from inattn.lit import LitGPT
from inattn.loggers import StepLog, build_loggers, finish_loggers, wandb_run_id
from inattn.model import GPTConfig
from inattn.pretrained import LoadedModel
from inattn.reporting.provenance import git_revision
from inattn.resume import RunState, check_resume, find_resume, read_checkpoint
from inattn.run_info import METRICS_FILE, read_metrics, write_json_atomic


def resolve_precision(precision: str, accelerator: str) -> str:
    """`auto`: bf16 autocast on GPUs that support it, full fp32 elsewhere."""
    if precision != "auto":
        return precision
    on_gpu = accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available()
    return "bf16-mixed" if on_gpu and torch.cuda.is_bf16_supported() else "32-true"


def trainer_kwargs(cfg: DictConfig) -> dict[str, Any]:
    kwargs = to_dict(cfg.trainer)
    kwargs["precision"] = resolve_precision(str(kwargs["precision"]), str(kwargs["accelerator"]))
    kwargs["gradient_clip_val"] = cfg.optim.grad_clip or None
    kwargs["check_val_every_n_epoch"] = None  # validate every val_check_interval steps
    kwargs["enable_checkpointing"] = False  # `Checkpoints` writes them
    # The train sampler shards itself by rank (the same global order for any number of
    # processes); every process validates the whole validation split.
    kwargs["use_distributed_sampler"] = False
    kwargs.setdefault("enable_model_summary", bool(cfg.get("verbose", False)))
    if kwargs["strategy"] == "fsdp":
        kwargs["strategy"] = fsdp_strategy()
    return kwargs


def progress_bar(cfg: DictConfig) -> list[console.TrainingBar]:
    """The one progress bar of a run (Lightning refuses a bar when `enable_progress_bar` is off)."""
    if not cfg.trainer.get("enable_progress_bar", True):
        return []
    return [console.TrainingBar(verbose=bool(cfg.get("verbose", False)))]


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


@dataclasses.dataclass
class Start:
    """Where a run starts: the checkpoint it resumes (path, contents, step, saved run facts)."""

    path: Path | None = None
    checkpoint: dict[str, Any] = dataclasses.field(default_factory=dict)  # dropped before fit
    step: int | None = None
    saved_run: dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def find(cls, cfg: DictConfig, run_dir: Path) -> Start:
        path = find_resume(cfg.resume, run_dir)
        if path is None:
            return cls()
        ckpt = read_checkpoint(path)
        return cls(path, ckpt, int(ckpt["global_step"]), ckpt.get("run", {}))


def build_data(cfg: DictConfig, source: Source | None = None) -> TextDataModule:
    """The data module; a model folder in `init_from` brings its own tokenizer."""
    tokenizer = to_dict(cfg.tokenizer)
    if source is not None:
        tokenizer = source.tokenizer_options(tokenizer, cfg.paths.cache)
    dm = TextDataModule(
        data_cfg=to_dict(cfg.data),
        tokenizer_cfg=tokenizer,
        context_length=cfg.context_length,
        batch_size=cfg.batch_size,
        cache_dir=cfg.paths.cache,
        seed=cfg.seed,
    )
    dm.prepare_data()
    dm.setup("fit")
    return dm


def run_facts(cfg: DictConfig, dm: TextDataModule) -> dict[str, Any]:
    """What a resumed run must share with the checkpoint it continues (see inattn.resume)."""
    return {
        "seed": cfg.seed,
        "batch_size": cfg.batch_size,
        "context_length": cfg.context_length,
        "vocab_size": dm.vocab_size,
        "train_tokens": dm.train_tokens,  # the same data, whatever folder or file times it has
        "train_blocks": len(dm.data.train),
    }


def finished(run_dir: Path, max_steps: int) -> dict[str, Any] | None:
    """The metrics of a run in this folder that already trained `max_steps` steps, if any."""
    metrics = read_metrics(run_dir)
    if metrics and "val_loss" in metrics and metrics.get("steps", -1) >= max_steps:
        return metrics
    return None


def start_from(gpt_cfg: GPTConfig, path: str | Source, extension: str) -> LoadedModel:
    """`init_from`'s model, extended to this run's context (errors name the config keys)."""
    try:
        return load_for(gpt_cfg, path, extension)
    except ConfigError as err:
        if err.field == "method":  # the extension method, as positions.py calls it
            raise ConfigError("init_extension", err.message) from None
        raise


def build_module(
    cfg: DictConfig,
    dm: TextDataModule,
    start: Start,
    facts: dict[str, Any],
    source: Source | None = None,
) -> LitGPT:
    """The LightningModule: from scratch, from `init_from`'s weights, or the checkpoint's model."""
    gpt_cfg = model_config(cfg, vocab_size=dm.vocab_size)
    if source is not None:  # a model folder sets the shape
        gpt_cfg = source.run_config(gpt_cfg)
    init = None
    if source is not None and not start.path:  # a resumed run has its own weights
        init = start_from(gpt_cfg, source, cfg.init_extension)
        gpt_cfg = initial_config(gpt_cfg, init)
    if start.path:
        max_steps = int(cfg.trainer.max_steps)
        check_resume(start.checkpoint, start.path, dataclasses.asdict(gpt_cfg), facts, max_steps)
        # The model continued is the checkpoint's, settings the run derived included (an
        # extended context's RoPE scale, say), not one rebuilt from the command line.
        gpt_cfg = GPTConfig(**start.checkpoint["hyper_parameters"]["model"])
    lit = LitGPT(dataclasses.asdict(gpt_cfg), to_dict(cfg.optim), int(cfg.trainer.max_steps))
    lit.tokenizer_json = Path(dm.tokenizer_path).read_text()
    if init is not None:
        copy_weights(lit.model, init)
    return lit


def fit(
    trainer: L.Trainer,
    lit: LitGPT,
    dm: TextDataModule,
    start: Start,
    loggers: list[Logger],
    checkpoints: Checkpoints,
) -> float:
    """Train, then validate once more; the final validation loss.

    A `NumericalFault` closes the loggers as failed and names the last good checkpoint.
    """
    try:
        # our own checkpoints (checked by read_checkpoint): they hold RNG states, not only tensors
        trainer.fit(lit, datamodule=dm, ckpt_path=start.path, weights_only=False)
        return trainer.validate(lit, datamodule=dm, verbose=False)[0]["val/loss"]
    except NumericalFault as fault:
        finish_loggers(loggers, None, failed=True)
        last = checkpoints.folder / LAST
        kept = (
            f"the last good checkpoint is {last} (step {checkpoints.saved_step})"
            if last.is_file()
            else "no checkpoint was written"
        )
        raise NumericalFault(f"{fault}; {kept}") from None


def run_metrics(
    cfg: DictConfig, trainer: L.Trainer, lit: LitGPT, val_loss: float, start: Start, seconds: float
) -> dict[str, Any]:
    """metrics.json: the result, the run's shape and where it came from."""
    gpt_cfg = lit.cfg
    return {
        "val_loss": float(val_loss),
        "params": lit.model.num_params(),
        "tokens_seen": lit.tokens_seen,
        "tokens_per_sec": lit.tokens_seen / max(lit.train_seconds, 1e-9),
        "wall_seconds": seconds,
        "steps": trainer.global_step,
        "resumed_from_step": start.step,
        "arch": gpt_cfg.arch,
        "variant": cfg.model.get("variant") or gpt_cfg.arch,  # the arch option (gqa, mqa, ...)
        "n_kv_head": gpt_cfg.kv_heads,
        "kv_share": gpt_cfg.kv_share,
        "size": cfg.model.size,
        "position": gpt_cfg.position,
        "n_layer": gpt_cfg.n_layer,
        "n_head": gpt_cfg.n_head,
        "d_model": gpt_cfg.d_model,
        "vocab_size": gpt_cfg.vocab_size,
        "context_length": cfg.context_length,
        "batch_size": cfg.batch_size,
        "world_size": trainer.world_size,
        "seed": cfg.seed,
        "group": cfg.get("group"),
        "git_revision": git_revision(),
    }


def report(run_dir: Path, metrics: dict[str, Any]) -> None:
    """The one-line summary of a finished run."""
    loss = metrics["val_loss"]
    print(
        f"{run_dir}: final val loss {loss:.4f} (ppl {math.exp(min(loss, 50)):.1f}) after "
        f"{metrics['steps']} steps, {metrics['tokens_per_sec']:,.0f} tokens/s"
    )


def train(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Train, validate once more at the end, write metrics.json; returns the metrics.

    Raises `NumericalFault` when a loss, gradient or weight stops being finite: the run stops
    before the bad update, and its checkpoints keep the last good state.
    """
    validate_train_config(cfg)
    console.configure(bool(cfg.get("verbose", False)))
    done = finished(run_dir, int(cfg.trainer.max_steps))
    if done is not None:
        print(f"already finished: {run_dir / METRICS_FILE} (delete it to train again)")
        return done
    clock = time.perf_counter()
    check_trainer(trainer_kwargs(cfg))
    start = Start.find(cfg, run_dir)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    source = check_source(cfg, given_overrides())  # a model folder also sets shape and tokenizer
    dm = build_data(cfg, source)
    facts = run_facts(cfg, dm)
    lit = build_module(cfg, dm, start, facts, source)
    loggers = build_loggers(
        cfg, run_dir, to_dict(cfg), run_id=start.saved_run.get("wandb_id"), resume_step=start.step
    )
    facts["wandb_id"] = wandb_run_id(loggers)
    checkpoints = Checkpoints(
        run_dir / FOLDER, cfg.checkpoint.every_n_steps, keep=cfg.checkpoint.keep
    )
    start.checkpoint = {}  # Lightning reads the checkpoint again itself
    trainer = L.Trainer(
        **trainer_kwargs(cfg),  # made anew: a strategy object serves one Trainer
        logger=loggers,
        # StepLog before Checkpoints: a step's row is written before its checkpoint
        callbacks=[StepLog(), checkpoints, RunState(facts, start.saved_run), *progress_bar(cfg)],
        plugins=[AtomicCheckpointIO()],
        default_root_dir=run_dir,
    )
    val_loss = fit(trainer, lit, dm, start, loggers, checkpoints)
    seconds = time.perf_counter() - clock
    metrics = {**run_metrics(cfg, trainer, lit, val_loss, start, seconds), "run_dir": str(run_dir)}
    finish_loggers(loggers, metrics)
    if trainer.is_global_zero:
        write_json_atomic(run_dir / METRICS_FILE, metrics)
        report(run_dir, metrics)
    return metrics
