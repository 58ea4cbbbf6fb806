"""When a run writes its checkpoints, and which files it keeps (file layout: `io`).

Every file goes through `io.write_checkpoint` (a temporary name, then a rename), so a killed run
never leaves a half-written checkpoint, and no checkpoint ever holds non-finite weights
(`finite_or_raise`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.plugins.io import TorchCheckpointIO

from inattn.checkpoints.io import BEST, LAST, STEP_FILE, write_checkpoint
from inattn.errors import NumericalFault


def finite_or_raise(trainer: L.Trainer, module: torch.nn.Module, what: str) -> None:
    """Raise on every process when any process holds a non-finite weight (shards differ)."""
    bad = next((n for n, p in module.named_parameters() if not torch.isfinite(p).all()), None)
    if trainer.strategy.reduce_boolean_decision(bad is not None, all=False):
        where = f"parameter {bad}" if bad else "a parameter on another process"
        raise NumericalFault(f"{what}: {where} is not finite")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, made atomic: every save goes through `write_checkpoint`."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        write_checkpoint(checkpoint, path)


def validation_due(trainer: L.Trainer) -> bool:
    """Whether Lightning validates after this training batch (step-interval validation).

    A wrong answer costs little: a missed save happens at the next periodic step or at the end,
    and a save before an unforeseen validation is repeated after it.
    """
    every = getattr(trainer, "val_check_batch", None)
    if not trainer.enable_validation or not isinstance(every, int) or every < 1:
        return False
    return (trainer.fit_loop.epoch_loop.total_batch_idx + 1) % every == 0


class Checkpoints(Callback):
    """last.ckpt every `every_n_steps` optimizer steps and at the end; best.ckpt on val/loss.

    A step that ends with a validation is saved after it: Lightning does not repeat, on resume, a
    validation that falls on the checkpoint's step, so a checkpoint from before it would lose it.
    The loggers are flushed with every save, so what was measured up to a checkpoint is on disk
    when the checkpoint is.
    """

    def __init__(self, folder: Path, every_n_steps: int, keep: int = 0, monitor: str = "val/loss"):
        self.folder = Path(folder)
        self.every_n_steps = every_n_steps
        self.keep = keep
        self.monitor = monitor
        self.best: float | None = None
        self.best_step: int | None = None
        self._saved_step: int | None = None
        self._pending: int | None = None  # a step whose save waits for its validation

    @property
    def last_path(self) -> Path:
        return self.folder / LAST

    @property
    def saved_step(self) -> int | None:
        """The step of the newest last.ckpt this run wrote (or resumed from)."""
        return self._saved_step

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._saved_step = trainer.global_step  # a resumed run does not save its first step again

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        step = trainer.global_step
        if self.every_n_steps and step % self.every_n_steps == 0 and step != self._saved_step:
            if validation_due(trainer):
                self._pending = step
            else:
                self._save_last(trainer, pl_module)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        step = trainer.global_step
        loss = trainer.callback_metrics.get(self.monitor)
        if loss is not None and not torch.isfinite(loss):
            raise NumericalFault(f"non-finite validation loss ({float(loss)}) at step {step}")
        if loss is not None and (self.best is None or loss < self.best):
            self.best, self.best_step = float(loss), step
            self._save(trainer, pl_module, self.folder / BEST)
        if step > 0 and step in (self._pending, self._saved_step):
            self._save_last(trainer, pl_module)
        self._pending = None

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.global_step != self._saved_step:
            self._save_last(trainer, pl_module)

    def _save(self, trainer: L.Trainer, pl_module: L.LightningModule, path: Path) -> None:
        finite_or_raise(trainer, pl_module, f"checkpoint at step {trainer.global_step}")
        for logger in trainer.loggers:
            logger.save()
        trainer.save_checkpoint(path, weights_only=False)

    def _save_last(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        step = trainer.global_step
        self._save(trainer, pl_module, self.last_path)
        self._saved_step = step
        if self.keep and trainer.is_global_zero:
            self._keep_copy(step)

    def _keep_copy(self, step: int) -> None:
        """step-N.ckpt as a hard link to this last.ckpt (renames never touch it), then prune."""
        target = self.folder / f"step-{step:07d}.ckpt"
        target.unlink(missing_ok=True)
        try:
            os.link(self.last_path, target)
        except OSError:  # file systems without hard links
            import shutil

            shutil.copy2(self.last_path, target)
        if self.keep > 0:
            kept = sorted(p for p in self.folder.iterdir() if STEP_FILE.fullmatch(p.name))
            for old in kept[: -self.keep]:
                old.unlink(missing_ok=True)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_step": self.best_step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_step = state.get("best"), state.get("best_step")
