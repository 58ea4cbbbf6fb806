"""One training run: config -> data module -> Lightning module -> metrics.json and W&B.

A run folder holds one run. Run again in the same folder, it skips a run that already finished
(metrics.json) and, with `resume=auto`, continues the last checkpoint exactly: weights, optimizer,
LR schedule, RNG streams, data position and the W&B run.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig

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
from inattn.resume import RunState, check_resume, find_resume, read_checkpoint
from inattn.run_info import METRICS_FILE, git_revision, read_metrics, write_json_atomic


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
    if kwargs["strategy"] == "fsdp":
        kwargs["strategy"] = fsdp_strategy()
    return kwargs


def fsdp_strategy() -> Any:
    """FSDP sharding each transformer block on its own (one unit for the whole model would
    gather every weight at once), with whole-model checkpoints that load anywhere."""
    from lightning.pytorch.strategies import FSDPStrategy

    from inattn.model import Block

    return FSDPStrategy(auto_wrap_policy={Block}, state_dict_type="full")


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


def train(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Train, validate once more at the end, write metrics.json; returns the metrics.

    Raises `NumericalFault` when a loss, gradient or weight stops being finite: the run stops
    before the bad update, and its checkpoints keep the last good state.
    """
    validate_train_config(cfg)
    max_steps = int(cfg.trainer.max_steps)
    done = finished(run_dir, max_steps)
    if done is not None:
        print(f"already finished: {run_dir / METRICS_FILE} (delete it to train again)")
        return done

    start = time.perf_counter()
    resume_from = find_resume(cfg.resume, run_dir)
    ckpt = read_checkpoint(resume_from) if resume_from else {}
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    source = check_source(cfg, given_overrides())  # a model folder also sets shape and tokenizer
    dm = build_data(cfg, source)
    gpt_cfg = model_config(cfg, vocab_size=dm.vocab_size)
    if source is not None:
        gpt_cfg = source.run_config(gpt_cfg)
    facts = {
        "seed": cfg.seed,
        "batch_size": cfg.batch_size,
        "context_length": cfg.context_length,
        "vocab_size": dm.vocab_size,
        "train_tokens": dm.train_tokens,  # the same data, whatever folder or file times it has
        "train_blocks": len(dm.data.train),
    }
    init = None
    if source is not None and not resume_from:  # a resumed run has its own weights
        init = start_from(gpt_cfg, source, cfg.init_extension)
        gpt_cfg = initial_config(gpt_cfg, init)
    if resume_from:
        check_resume(ckpt, resume_from, dataclasses.asdict(gpt_cfg), facts, max_steps)
        # The model continued is the checkpoint's, settings the run derived included (an
        # extended context's RoPE scale, say), not one rebuilt from the command line.
        gpt_cfg = GPTConfig(**ckpt["hyper_parameters"]["model"])
    saved_run = ckpt.get("run", {})
    resume_step = int(ckpt["global_step"]) if ckpt else None
    del ckpt  # Lightning reads the checkpoint again itself

    lit = LitGPT(dataclasses.asdict(gpt_cfg), to_dict(cfg.optim), max_steps)
    lit.tokenizer_json = Path(dm.tokenizer_path).read_text()
    if init is not None:
        copy_weights(lit.model, init)
    loggers = build_loggers(
        cfg, run_dir, to_dict(cfg), run_id=saved_run.get("wandb_id"), resume_step=resume_step
    )
    facts["wandb_id"] = wandb_run_id(loggers)
    checkpoints = Checkpoints(
        run_dir / FOLDER, cfg.checkpoint.every_n_steps, keep=cfg.checkpoint.keep
    )
    trainer = L.Trainer(
        **trainer_kwargs(cfg),
        logger=loggers,
        callbacks=[StepLog(), checkpoints, RunState(facts, saved_run)],  # in this order
        plugins=[AtomicCheckpointIO()],
        default_root_dir=run_dir,
    )
    try:
        # our own checkpoints (checked by read_checkpoint): they hold RNG states, not only tensors
        trainer.fit(lit, datamodule=dm, ckpt_path=resume_from, weights_only=False)
        val_loss = trainer.validate(lit, datamodule=dm, verbose=False)[0]["val/loss"]
    except NumericalFault as fault:
        finish_loggers(loggers, None, failed=True)
        last = run_dir / FOLDER / LAST
        kept = (
            f"the last good checkpoint is {last} (step {checkpoints.saved_step})"
            if last.is_file()
            else "no checkpoint was written"
        )
        raise NumericalFault(f"{fault}; {kept}") from None

    metrics = {
        "val_loss": float(val_loss),
        "params": lit.model.num_params(),
        "tokens_seen": lit.tokens_seen,
        "tokens_per_sec": lit.tokens_seen / max(lit.train_seconds, 1e-9),
        "wall_seconds": time.perf_counter() - start,
        "steps": trainer.global_step,
        "resumed_from_step": resume_step,
        "arch": gpt_cfg.arch,
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
        "run_dir": str(run_dir),
    }
    finish_loggers(loggers, metrics)
    if trainer.is_global_zero:
        write_json_atomic(run_dir / METRICS_FILE, metrics)
        print(
            f"\nrun folder: {run_dir}\nfinal val loss: {metrics['val_loss']:.4f}"
            f"  (ppl {torch.tensor(metrics['val_loss']).exp():.1f})"
            f"\ntokens/s: {metrics['tokens_per_sec']:,.0f}"
        )
    return metrics
