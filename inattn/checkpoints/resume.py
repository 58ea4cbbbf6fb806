"""Resuming a run: which checkpoint, whether it fits this run, and what Lightning leaves out.

Lightning restores the weights, the optimizer, the LR schedule and its loops; `RunState` adds
the RNG streams and the data position, and the checks below refuse a checkpoint that this run
could not continue exactly, naming the field to change.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.utilities.seed import _collect_rng_states, _set_rng_states
from lightning.pytorch.callbacks import Callback

from inattn.checkpoints.io import (
    FOLDER,
    LAST,
    RESUME_KEYS,
    SHAPE_FIELDS,
    CheckpointError,
    check_shape,
    read_checkpoint,
)

# Resuming mid-epoch is exact here (RunState sets the data position), so Lightning's generic
# warning about loaders without a state_dict does not apply.
warnings.filterwarnings("ignore", message="You're resuming from a checkpoint that ended before")


class RunState(Callback):
    """What a resume needs beyond Lightning's own state: data position, RNG streams, run facts.

    `facts` (seed, batch size, token and block counts, W&B run id) go into checkpoint["run"], where
    `check_resume` compares them with the resuming run's settings. The RNG state is taken when
    the checkpoint is written; every process draws the same stream (same seed), so rank 0's state
    is every rank's. The data position is not stored: it follows from the optimizer steps taken.
    """

    def __init__(self, facts: dict[str, Any], saved: dict[str, Any] | None = None):
        self.facts = facts
        self.saved = saved or {}  # checkpoint["run"] of the checkpoint being resumed
        self._rng: dict[str, Any] | None = None

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        checkpoint["run"] = {
            **self.facts,
            "world_size": trainer.world_size,
            "accumulate_grad_batches": trainer.accumulate_grad_batches,
            "rng": _collect_rng_states(include_cuda=torch.cuda.is_available()),
        }

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        self._rng = checkpoint.get("run", {}).get("rng")

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        check_global_batch(
            self.saved,
            self.facts["batch_size"],
            trainer.world_size,
            trainer.accumulate_grad_batches,
        )
        trainer.datamodule.resume_at(trainer.global_step * trainer.accumulate_grad_batches)
        if self._rng is not None:
            _set_rng_states(self._rng)
            self._rng = None


def find_resume(resume: Any, run_dir: Path) -> Path | None:
    """The checkpoint to resume from: None for `false` or for `auto` in a folder without one
    (a path is checked when it is read: `read_resumable`)."""
    if resume is False or resume is None:
        return None
    if resume == "auto":
        last = Path(run_dir) / FOLDER / LAST
        return last if last.is_file() else None
    return Path(str(resume)).expanduser()


def read_resumable(path: Path) -> dict[str, Any]:
    """The checkpoint `resume` names, with what continuing it needs (its step, its model)."""
    return read_checkpoint(path, "resume", needs=RESUME_KEYS)


RUN_FIELDS = {  # facts of checkpoint["run"] a resumed run must share, and the field to name
    "seed": "seed",
    "train_tokens": "data",
    "train_blocks": "data",
}
# A resumed run continues the same model: the same tensors, arch and context.
MODEL_FIELDS = ("arch", *SHAPE_FIELDS, "context_length")


def check_resume(
    ckpt: dict[str, Any], path: Path, model: dict[str, Any], run: dict[str, Any], max_steps: int
) -> None:
    """Refuse to resume a checkpoint into a run it cannot continue exactly, naming the field
    (the tokenizer's vocabulary is a model field: `tokenizer.vocab_size`)."""
    saved_model = ckpt.get("hyper_parameters", {}).get("model", {})
    check_shape(saved_model, model, path, names=MODEL_FIELDS, fix="resume with the same model")
    saved_run = ckpt.get("run", {})
    for name, field in RUN_FIELDS.items():
        if name in saved_run and saved_run[name] != run.get(name):
            raise CheckpointError(
                field,
                f"{path} was trained with {name}={saved_run[name]}, this run has "
                f"{name}={run.get(name)}: resume with the same {field} settings",
            )
    step = int(ckpt["global_step"])
    if step > max_steps:
        raise CheckpointError(
            "trainer.max_steps",
            f"{path} is at step {step}, beyond trainer.max_steps={max_steps}: raise max_steps",
        )


def check_global_batch(
    saved: dict[str, Any], batch_size: int, world_size: int, accumulate: int
) -> None:
    """The data position is steps x global batch: a resumed run must keep the global batch."""
    if not saved:
        return
    before = (saved["batch_size"] * saved["world_size"], saved["accumulate_grad_batches"])
    now = (batch_size * world_size, accumulate)
    if before != now:
        raise CheckpointError(
            "batch_size",
            f"the checkpoint was trained with {saved['world_size']} process(es) x batch_size "
            f"{saved['batch_size']} x accumulate {saved['accumulate_grad_batches']}; this run has "
            f"{world_size} x {batch_size} x {accumulate}: keep batch_size x processes and "
            "trainer.accumulate_grad_batches",
        )
