"""One training run: config -> data module -> Lightning module -> metrics.json and W&B.

A run folder holds one run. Run again in the same folder, it skips a run that already finished
(metrics.json) and, with `resume=auto`, continues the last checkpoint exactly: weights, optimizer,
LR schedule, RNG streams, data position and the W&B run.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig

from inattn import console
from inattn.checkpoints.init_from import Source, check_source, given_overrides
from inattn.checkpoints.io import FOLDER, LAST
from inattn.checkpoints.resume import RunState
from inattn.checkpoints.saving import Checkpoints
from inattn.data.module import TextDataModule
from inattn.errors import NumericalFault
from inattn.run_info import METRICS_FILE, write_json_atomic
from inattn.training.config import DataConfig, RunConfig
from inattn.training.lit import LitGPT
from inattn.training.loggers import StepLog, build_loggers, finish_loggers, wandb_run_id
from inattn.training.results import finished, run_metrics, summary
from inattn.training.start import Start, build_module, run_facts
from inattn.training.trainer import build_trainer, check_trainer, trainer_kwargs


def train(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Train, validate once more at the end, write metrics.json; returns the metrics.

    Raises `NumericalFault` when a loss, gradient or weight stops being finite: the run stops
    before the bad update, and its checkpoints keep the last good state.
    """
    run = RunConfig.from_cfg(cfg)
    console.configure(run.verbose)
    done = finished(run_dir, run.trainer.max_steps)
    if done is not None:
        print(f"already finished: {run_dir / METRICS_FILE} (delete it to train again)")
        return done
    clock = time.perf_counter()
    check_trainer(trainer_kwargs(run))
    start = Start.find(run.resume, run_dir)
    L.seed_everything(run.seed, workers=True, verbose=False)
    source = check_source(cfg, given_overrides())  # a model folder also sets shape and tokenizer
    dm = build_data(run.data, source)
    facts = run_facts(run, dm)
    lit = build_module(run, dm, start, facts, source)
    loggers = build_loggers(
        run.logger, run_dir, run.resolved, start.saved_run.get("wandb_id"), start.step
    )
    facts["wandb_id"] = wandb_run_id(loggers)
    checkpoints = Checkpoints(
        run_dir / FOLDER, run.checkpoint.every_n_steps, keep=run.checkpoint.keep
    )
    start.checkpoint = {}  # Lightning reads the checkpoint again itself
    # StepLog before Checkpoints: a step's row is written before its checkpoint
    callbacks = [StepLog(), checkpoints, RunState(facts, start.saved_run)]
    trainer = build_trainer(run, run_dir, loggers, callbacks)
    val_loss = fit(trainer, lit, dm, start, loggers, checkpoints)
    seconds = time.perf_counter() - clock
    metrics = run_metrics(run, run_dir, trainer, lit, val_loss, start.step, seconds)
    finish_loggers(loggers, metrics)
    if trainer.is_global_zero:
        write_json_atomic(run_dir / METRICS_FILE, metrics)
        print(summary(run_dir, metrics))
    return metrics


def build_data(data: DataConfig, source: Source | None = None) -> TextDataModule:
    """The data module, its cache built or reused; a model folder in `init_from` brings its
    own tokenizer."""
    tokenizer = dict(data.tokenizer)
    if source is not None:
        tokenizer = source.tokenizer_options(tokenizer, data.cache_dir)
    dm = TextDataModule(
        data_cfg=dict(data.options),
        tokenizer_cfg=tokenizer,
        context_length=data.context_length,
        batch_size=data.batch_size,
        cache_dir=data.cache_dir,
        seed=data.seed,
        num_workers=data.num_workers,
    )
    dm.prepare_data()
    dm.setup("fit")
    return dm


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
        # our own checkpoints (checked by read_resumable): they hold RNG states, not only tensors
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
