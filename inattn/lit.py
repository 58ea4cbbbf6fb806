"""The LightningModule: one training recipe for both variants."""

from __future__ import annotations

import math
import time
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import grad_norm

from inattn.checkpointing import NumericalFault
from inattn.model import GPT, GPTConfig


def lr_lambda(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warmup to 1, then cosine decay to `min_ratio` at `total` steps."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


class LitGPT(L.LightningModule):
    """Trains `GPT` on (x, y) token blocks; logs loss, perplexity, tokens/s, lr and grad norm."""

    def __init__(self, model: dict[str, Any], optim: dict[str, Any], max_steps: int):
        super().__init__()
        self.save_hyperparameters()
        self.model = GPT(GPTConfig(**model))
        self.optim = optim
        self.max_steps = max_steps
        self.tokens_seen = 0
        self._step_start: float | None = None
        self.train_seconds = 0.0  # time inside training steps only (validation excluded)
        self.tokenizer_json: str | None = None  # travels in checkpoints, for generation
        self._loss: torch.Tensor | None = None  # this step's loss, checked before the update

    @property
    def cfg(self) -> GPTConfig:
        return self.model.cfg

    def loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        logits = self.model(x)
        return F.cross_entropy(logits.flatten(0, 1).float(), y.flatten())

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        self._step_start = time.perf_counter()

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        loss = self.loss(batch)
        self._loss = loss.detach()
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/ppl", torch.exp(loss.detach().clamp(max=20)))
        self.log("lr", self.optimizers().param_groups[0]["lr"])
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        step_seconds = time.perf_counter() - self._step_start
        tokens = batch[0].numel() * self.trainer.world_size
        self.tokens_seen += tokens
        self.train_seconds += step_seconds
        self.log("train/tokens_per_sec", tokens / step_seconds, prog_bar=True)
        self.log("train/tokens_seen", float(self.tokens_seen))

    def on_before_optimizer_step(self, optimizer) -> None:
        """Log the gradient norm; stop before a non-finite loss or gradient reaches the weights.

        The decision is taken by all processes together (any rank's fault stops every rank), so
        no process is left waiting for the others. With fp16 loss scaling, overflowing gradients
        are the scaler's business (it skips the step), so only the loss is checked then.
        """
        total = grad_norm(self.model, norm_type=2)["grad_2.0_norm_total"]
        self.log("train/grad_norm", total)
        loss_ok = self._loss is None or bool(torch.isfinite(self._loss))
        grads_ok = self.trainer.precision.startswith("16") or bool(torch.isfinite(total))
        fault = self.trainer.strategy.reduce_boolean_decision(not (loss_ok and grads_ok), all=False)
        if fault:
            what = "loss" if not loss_ok else "gradient norm"
            value = self._loss if not loss_ok else total
            raise NumericalFault(
                f"non-finite training {what} ({float(value)}) at step {self.global_step + 1}"
            )

    def validation_step(self, batch, batch_idx: int) -> None:
        loss = self.loss(batch)
        self.log("val/loss", loss, prog_bar=True, sync_dist=True, batch_size=batch[0].shape[0])

    def on_validation_epoch_end(self) -> None:
        loss = self.trainer.callback_metrics.get("val/loss")
        if loss is not None:
            self.log("val/ppl", torch.exp(loss.clamp(max=20)), sync_dist=True)

    def configure_optimizers(self):
        o = self.optim
        decay = [p for p in self.model.parameters() if p.dim() >= 2]
        no_decay = [p for p in self.model.parameters() if p.dim() < 2]
        optimizer = torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": o["weight_decay"]},
                {"params": no_decay, "weight_decay": 0.0},
            ],
            lr=o["lr"],
            betas=tuple(o["betas"]),
            eps=o["eps"],
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer,
            lambda step: lr_lambda(step, o["warmup_steps"], self.max_steps, o["min_lr_ratio"]),
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["inattn"] = {
            "tokens_seen": self.tokens_seen,
            "train_seconds": self.train_seconds,
            "tokenizer_json": self.tokenizer_json,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("inattn", {})
        self.tokens_seen = state.get("tokens_seen", 0)
        self.train_seconds = state.get("train_seconds", 0.0)
        self.tokenizer_json = state.get("tokenizer_json")
