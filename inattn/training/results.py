"""A run's result: metrics.json (the result, the run's shape, where it came from) and the
one-line summary printed when it finishes."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import lightning as L

from inattn.reporting.provenance import git_revision
from inattn.run_info import read_metrics
from inattn.training.config import RunConfig
from inattn.training.lit import LitGPT


def finished(run_dir: Path, max_steps: int) -> dict[str, Any] | None:
    """The metrics of a run in this folder that already trained `max_steps` steps, if any."""
    metrics = read_metrics(run_dir)
    if metrics and "val_loss" in metrics and metrics.get("steps", -1) >= max_steps:
        return metrics
    return None


def run_metrics(
    run: RunConfig,
    run_dir: Path,
    trainer: L.Trainer,
    lit: LitGPT,
    val_loss: float,
    resumed_from: int | None,
    seconds: float,
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
        "resumed_from_step": resumed_from,
        "arch": gpt_cfg.arch,
        "variant": run.variant,  # the arch option (gqa, mqa, ...)
        "n_kv_head": gpt_cfg.kv_heads,
        "kv_share": gpt_cfg.kv_share,
        "size": run.size,
        "position": gpt_cfg.position,
        "n_layer": gpt_cfg.n_layer,
        "n_head": gpt_cfg.n_head,
        "d_model": gpt_cfg.d_model,
        "vocab_size": gpt_cfg.vocab_size,
        "context_length": run.data.context_length,
        "batch_size": run.data.batch_size,
        "world_size": trainer.world_size,
        "seed": run.seed,
        "group": run.logger.group,
        "git_revision": git_revision(),
        "run_dir": str(run_dir),
    }


def summary(run_dir: Path, metrics: dict[str, Any]) -> str:
    """The one-line summary of a finished run."""
    loss = metrics["val_loss"]
    return (
        f"{run_dir}: final val loss {loss:.4f} (ppl {math.exp(min(loss, 50)):.1f}) after "
        f"{metrics['steps']} steps, {metrics['tokens_per_sec']:,.0f} tokens/s"
    )
