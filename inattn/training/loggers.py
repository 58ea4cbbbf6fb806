"""Loggers for a run: W&B (offline unless asked otherwise) and a CSV log that always works.

W&B is never allowed to stop training: if it cannot start, or fails during the run, one warning
is printed and the run goes on with the CSV log, which holds every measured value either way.
A resumed run continues both: the same W&B run (by id) and the same metrics.csv.
"""

from __future__ import annotations

import csv
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger, Logger, WandbLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment

from inattn.training.config import LoggerConfig

log = logging.getLogger(__name__)


class _ResumingWriter(ExperimentWriter):
    """Lightning's CSV writer deletes an existing metrics.csv; a resumed run keeps its rows.

    Rows logged at or after `resume_step` belong to steps the resumed run trains again, so they
    are dropped and logged anew.
    """

    def __init__(self, log_dir: str, resume_step: int | None):
        self.resume_step = resume_step
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:
        path = Path(self.metrics_file_path)
        if not path.is_file():
            return
        if self.resume_step is None:
            path.unlink()  # a fresh run in a used folder starts a fresh log
            return
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            keys = list(reader.fieldnames or [])
            rows = [r for r in reader if int(float(r["step"])) < self.resume_step]
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(rows)
        self.metrics_keys = sorted(keys)


class ResumableCSVLogger(CSVLogger):
    """`<run folder>/csv/metrics.csv`, continued (not replaced) when the run resumes.

    Every row goes to disk as it is logged (rows are small), so a killed run loses none.
    """

    def __init__(self, save_dir: str, resume_step: int | None = None):
        super().__init__(save_dir=save_dir, name="csv", version="", flush_logs_every_n_steps=1)
        self._resume_step = resume_step

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _ResumingWriter(self.log_dir, self._resume_step)
        return self._experiment


class StepLog(Callback):
    """One row per optimizer step: the module's `step_metrics()` plus the step's time and tokens/s.

    Written at the step's own batch end, before any checkpoint of that step (callbacks run in
    list order: put this one before `Checkpoints`). Lightning's `self.log` hands rows to the
    loggers only after the batch-end hooks, so a run killed just after a checkpoint would lose
    that step's row, and the resumed run, which starts after it, would never log it again.
    Row `step` is the 0-based step index, as Lightning numbers the validation rows.
    """

    def __init__(self) -> None:
        self._start: float | None = None
        self._last_step = 0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._last_step = trainer.global_step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if self._start is None:  # the first batch of an optimizer step (with accumulation)
            self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        step = trainer.global_step
        if step == self._last_step or self._start is None:  # accumulating: no update yet
            return
        seconds = time.perf_counter() - self._start
        self._start, self._last_step = None, step
        pl_module.train_seconds += seconds
        tokens = batch[0].numel() * trainer.world_size * trainer.accumulate_grad_batches
        metrics = {**pl_module.step_metrics(), "train/tokens_per_sec": tokens / seconds}
        pl_module.log(
            "train/tokens_per_sec", metrics["train/tokens_per_sec"], prog_bar=True, logger=False
        )
        if step % trainer.log_every_n_steps == 0:
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=step - 1)


class GuardedWandbLogger(WandbLogger):
    """A WandbLogger that, on its first failure, warns once and turns itself off."""

    failed = False

    def _guard(self, what: str, call: Callable[..., Any], *args: Any) -> Any:
        if self.failed:
            return None
        try:
            return call(*args)
        except Exception as err:
            self.failed = True
            log.warning("W&B failed while %s (%s); logging to CSV only from now on", what, err)
            return None

    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        self._guard("logging metrics", super().log_metrics, metrics, step)

    def log_hyperparams(self, params: Any) -> None:
        self._guard("logging the config", super().log_hyperparams, params)

    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        self._guard("noting a checkpoint", super().after_save_checkpoint, checkpoint_callback)

    def finalize(self, status: str) -> None:
        self._guard("closing the run", super().finalize, status)


def build_loggers(
    cfg: LoggerConfig,
    run_dir: Path,
    config: dict[str, Any],
    run_id: str | None = None,
    resume_step: int | None = None,
) -> list[Logger]:
    """CSV always; W&B when enabled. If W&B cannot start, warn once and go on with CSV.

    `config` is the run's whole config, W&B's record of it. `run_id` continues that W&B run (a
    resumed training run); `resume_step` keeps the CSV rows logged before that step.
    """
    loggers: list[Logger] = [ResumableCSVLogger(save_dir=str(run_dir), resume_step=resume_step)]
    wb = cfg.wandb
    if not wb.active:
        return loggers
    os.environ.setdefault("WANDB_SILENT", "true")
    try:
        import wandb

        logger = GuardedWandbLogger(
            project=wb.project,
            entity=wb.entity,
            group=cfg.group or None,
            tags=list(cfg.tags),
            name=run_dir.name,
            save_dir=str(run_dir),
            mode=wb.mode,
            config=config,
            id=run_id,
            resume="allow" if run_id else None,
            job_type="train",
            settings=wandb.Settings(init_timeout=float(wb.init_timeout)),
        )
        # Lightning always passes `anonymous`, which current W&B answers with a warning per run.
        getattr(logger, "_wandb_init", {}).pop("anonymous", None)
        logger.experiment  # noqa: B018 (starts the run now, so a failure shows here)
    except Exception as err:  # W&B failing must never stop training
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        log.warning("W&B could not start (%s); logging to CSV only", reason)
        return loggers
    return [logger, *loggers]


def wandb_run_id(loggers: list[Logger]) -> str | None:
    """The W&B run's id (stored in checkpoints, so a resumed run continues the same W&B run)."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            return logger.version
    return None


def finish_loggers(
    loggers: list[Logger], summary: dict[str, Any] | None, failed: bool = False
) -> None:
    """Write the summary and close W&B, so the next multirun job starts a fresh run."""
    for logger in loggers:
        if isinstance(logger, GuardedWandbLogger) and logger.failed:
            continue
        if isinstance(logger, WandbLogger):
            try:
                if summary:
                    logger.experiment.summary.update(summary)
                logger.experiment.finish(exit_code=1 if failed else 0)
            except Exception as err:
                log.warning("W&B could not finish cleanly (%s)", err)
        else:
            logger.finalize("failed" if failed else "success")
