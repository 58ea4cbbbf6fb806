"""One training run: config -> data module -> Lightning module -> metrics.json and W&B."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig

from inattn.config import model_config, to_dict, validate_train_config
from inattn.data.module import TextDataModule
from inattn.lit import LitGPT
from inattn.loggers import build_loggers, finish_loggers
from inattn.run_info import METRICS_FILE, git_revision, write_json_atomic


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
    return kwargs


def build_data(cfg: DictConfig) -> TextDataModule:
    dm = TextDataModule(
        data_cfg=to_dict(cfg.data),
        tokenizer_cfg=to_dict(cfg.tokenizer),
        context_length=cfg.context_length,
        batch_size=cfg.batch_size,
        cache_dir=cfg.paths.cache,
        seed=cfg.seed,
    )
    dm.prepare_data()
    dm.setup("fit")
    return dm


def train(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Train, validate once more at the end, write metrics.json; returns the metrics."""
    validate_train_config(cfg)
    start = time.perf_counter()
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    dm = build_data(cfg)
    gpt_cfg = model_config(cfg, vocab_size=dm.vocab_size)
    lit = LitGPT(dataclasses.asdict(gpt_cfg), to_dict(cfg.optim), cfg.trainer.max_steps)
    lit.tokenizer_json = Path(dm.tokenizer_path).read_text()

    loggers = build_loggers(cfg, run_dir, config=to_dict(cfg))
    checkpoints = ModelCheckpoint(
        dirpath=run_dir / "checkpoints",
        save_last=True,
        monitor="val/loss",
        save_top_k=1,
        filename="best",
    )
    trainer = L.Trainer(
        **trainer_kwargs(cfg), logger=loggers, callbacks=[checkpoints], default_root_dir=run_dir
    )
    trainer.fit(lit, datamodule=dm)
    val_loss = trainer.validate(lit, datamodule=dm, verbose=False)[0]["val/loss"]

    metrics = {
        "val_loss": float(val_loss),
        "params": lit.model.num_params(),
        "tokens_seen": lit.tokens_seen,
        "tokens_per_sec": lit.tokens_seen / max(lit.train_seconds, 1e-9),
        "wall_seconds": time.perf_counter() - start,
        "steps": trainer.global_step,
        "arch": gpt_cfg.arch,
        "size": cfg.model.size,
        "position": gpt_cfg.position,
        "n_layer": gpt_cfg.n_layer,
        "n_head": gpt_cfg.n_head,
        "d_model": gpt_cfg.d_model,
        "vocab_size": gpt_cfg.vocab_size,
        "context_length": cfg.context_length,
        "seed": cfg.seed,
        "experiment": cfg.get("experiment"),
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
