"""The LightningModule: one training recipe for both variants."""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import grad_norm

from inattn.errors import NumericalFault
from inattn.model import GPT, GPTConfig


def lr_lambda(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warmup to 1, then cosine decay to `min_ratio` at `total` steps."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


class LitGPT(L.LightningModule):
    """Trains `GPT` on (x, y) token blocks.

    Each optimizer step's measurements (loss, perplexity, lr, gradient norm, tokens seen) are
    handed out by `step_metrics()`; `inattn.training.loggers.StepLog` writes them, with the
    step's time, to the loggers. Validation loss and perplexity go through `self.log`.
    """

    def __init__(self, model: dict[str, Any], optim: dict[str, Any], max_steps: int):
        super().__init__()
        self.save_hyperparameters()
        self.model = GPT(GPTConfig(**model))
        self.optim = optim
        self.max_steps = max_steps
        self.tokens_seen = 0
        self.train_seconds = 0.0  # time inside training steps only (validation excluded)
        self.tokenizer_json: str | None = None  # travels in checkpoints, for generation
        self._loss: torch.Tensor | None = None  # this batch's loss, checked before the update
        self._losses: list[torch.Tensor] = []  # global-batch losses since the last step
        self._grad_norm: torch.Tensor | None = None
        self._lr = 0.0

    @property
    def cfg(self) -> GPTConfig:
        return self.model.cfg

    def loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        logits = self.model(x)
        return F.cross_entropy(logits.flatten(0, 1).float(), y.flatten())

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        loss = self.loss(batch)
        self._loss = loss.detach()
        # Counted here, not at batch end: a checkpoint written at this batch's end must include it.
        self.tokens_seen += batch[0].numel() * self.trainer.world_size
        global_loss = self.all_gather(self._loss).mean()  # the global batch's loss, every rank
        self._losses.append(global_loss)
        self._lr = self.optimizers().param_groups[0]["lr"]  # the rate this step uses
        self.log("train/loss", global_loss, prog_bar=True, logger=False)
        return loss

    def step_metrics(self) -> dict[str, float]:
        """The last optimizer step's measurements (its batches' mean loss); clears them."""
        if not self._losses:
            return {}
        loss = torch.stack(self._losses).mean()
        self._losses = []
        metrics = {
            "train/loss": float(loss),
            "train/ppl": float(torch.exp(loss.clamp(max=20))),
            "lr": self._lr,
            "train/tokens_seen": float(self.tokens_seen),
        }
        if self._grad_norm is not None:
            metrics["train/grad_norm"] = float(self._grad_norm)
        return metrics

    def on_before_optimizer_step(self, optimizer) -> None:
        """Note the gradient norm; stop before a non-finite loss or gradient reaches the weights.

        The decision is taken by all processes together (any rank's fault stops every rank), so
        no process is left waiting for the others. With fp16 loss scaling, overflowing gradients
        are the scaler's business (it skips the step), so only the loss is checked then.
        """
        total = grad_norm(self.model, norm_type=2)["grad_2.0_norm_total"]
        self._grad_norm = total
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
