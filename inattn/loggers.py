"""Loggers for a run: W&B (offline unless asked otherwise) and a CSV log that always works."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger, Logger, WandbLogger
from omegaconf import DictConfig

log = logging.getLogger(__name__)


def run_tags(cfg: DictConfig) -> list[str]:
    """arch, size and context length, plus any tags the user gave."""
    base = [cfg.model.arch, cfg.model.size, f"T{cfg.context_length}", cfg.model.position]
    return base + [str(t) for t in cfg.get("tags") or []]


def build_loggers(
    cfg: DictConfig, run_dir: Path, config: dict[str, Any], run_id: str | None = None
) -> list[Logger]:
    """CSV always; W&B when enabled. If W&B cannot start, warn once and go on with CSV."""
    loggers: list[Logger] = [CSVLogger(save_dir=str(run_dir), name="csv", version="")]
    wb = cfg.logger.wandb
    if not wb.enabled or wb.mode == "disabled":
        return loggers
    os.environ.setdefault("WANDB_SILENT", "true")
    try:
        logger = WandbLogger(
            project=wb.project,
            entity=wb.entity,
            group=cfg.get("experiment") or None,
            tags=run_tags(cfg),
            name=run_dir.name,
            save_dir=str(run_dir),
            mode=wb.mode,
            config=config,
            id=run_id,
            resume="allow" if run_id else None,
            job_type="train",
        )
        logger.experiment  # noqa: B018 (starts the run now, so a failure shows here)
    except Exception as err:  # W&B failing must never stop training
        log.warning("W&B could not start (%s); logging to CSV only", err)
        return loggers
    return [logger, *loggers]


def finish_loggers(loggers: list[Logger], summary: dict[str, Any]) -> None:
    """Write the final summary and close W&B, so the next multirun job starts a fresh run."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            try:
                logger.experiment.summary.update(summary)
                logger.experiment.finish()
            except Exception as err:
                log.warning("W&B could not finish cleanly (%s)", err)
        else:
            logger.finalize("success")
