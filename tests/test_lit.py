"""inattn.training.lit: the LR schedule, the loss, the optimizer groups and what a training
step records."""

from __future__ import annotations

import math
import random

import pytest
import torch

from inattn.errors import NumericalFault
from inattn.training.lit import LitGPT, lr_lambda
from tests.conftest import TINY_MODEL, TINY_OPTIM


def test_lr_schedule_warms_up_linearly_then_decays_on_a_cosine():
    rng = random.Random(3)
    for _ in range(20):
        warmup, total = rng.randint(1, 20), rng.randint(25, 200)
        low = rng.uniform(0.0, 0.5)
        for step in range(warmup):
            assert lr_lambda(step, warmup, total, low) == pytest.approx((step + 1) / warmup)
        assert lr_lambda(warmup, warmup, total, low) == pytest.approx(1.0)
        middle = warmup + (total - warmup) / 2  # half way down the cosine: the mean of 1 and low
        assert lr_lambda(middle, warmup, total, low) == pytest.approx((1 + low) / 2)
        assert lr_lambda(total, warmup, total, low) == pytest.approx(low)
        assert lr_lambda(total + 50, warmup, total, low) == pytest.approx(low)  # stays down


def test_loss_is_the_mean_negative_log_likelihood_of_the_targets():
    torch.manual_seed(0)
    lit = LitGPT({**TINY_MODEL, "dropout": 0.0}, dict(TINY_OPTIM), max_steps=10)
    x = torch.randint(0, TINY_MODEL["vocab_size"], (3, 8))
    y = torch.randint(0, TINY_MODEL["vocab_size"], (3, 8))
    with torch.no_grad():
        logits = lit.model(x).double()
    log_probs = logits - logits.exp().sum(-1, keepdim=True).log()
    want = -log_probs.gather(-1, y[..., None]).mean()
    with torch.no_grad():
        assert float(lit.loss((x, y))) == pytest.approx(float(want), rel=1e-5)


def test_weight_decay_applies_to_matrices_only_and_every_parameter_once():
    lit = LitGPT(dict(TINY_MODEL), dict(TINY_OPTIM), max_steps=10)
    optimizer = lit.configure_optimizers()["optimizer"]
    decay, no_decay = optimizer.param_groups
    assert decay["weight_decay"] == TINY_OPTIM["weight_decay"] and no_decay["weight_decay"] == 0
    assert all(p.dim() >= 2 for p in decay["params"])
    assert all(p.dim() < 2 for p in no_decay["params"]) and no_decay["params"]
    grouped = [id(p) for g in optimizer.param_groups for p in g["params"]]
    assert sorted(grouped) == sorted(id(p) for p in lit.model.parameters())
    assert optimizer.defaults["betas"] == tuple(TINY_OPTIM["betas"])


def test_step_metrics_average_the_steps_batches_and_clear():
    lit = LitGPT(dict(TINY_MODEL), dict(TINY_OPTIM), max_steps=10)
    assert lit.step_metrics() == {}
    lit._losses = [torch.tensor(2.0), torch.tensor(4.0)]
    lit._lr, lit.tokens_seen, lit._grad_norm = 0.5, 96, torch.tensor(1.5)
    metrics = lit.step_metrics()
    assert metrics["train/loss"] == 3.0 and metrics["train/ppl"] == pytest.approx(math.exp(3))
    assert metrics["lr"] == 0.5 and metrics["train/tokens_seen"] == 96.0
    assert metrics["train/grad_norm"] == 1.5
    assert lit.step_metrics() == {}


def test_checkpoint_carries_tokens_time_and_tokenizer():
    lit = LitGPT(dict(TINY_MODEL), dict(TINY_OPTIM), max_steps=10)
    lit.tokens_seen, lit.train_seconds, lit.tokenizer_json = 1234, 5.5, '{"model": {}}'
    checkpoint: dict = {}
    lit.on_save_checkpoint(checkpoint)
    other = LitGPT(dict(TINY_MODEL), dict(TINY_OPTIM), max_steps=10)
    other.on_load_checkpoint(checkpoint)
    assert (other.tokens_seen, other.train_seconds, other.tokenizer_json) == (
        1234,
        5.5,
        '{"model": {}}',
    )


def test_training_counts_tokens_and_follows_the_schedule(fit_tiny):
    trainer, lit = fit_tiny(5, batch=4)
    assert trainer.global_step == 5
    assert lit.tokens_seen == 5 * 4 * TINY_MODEL["context_length"]
    # the rate used by the last step (step index 4) is the schedule's
    want = TINY_OPTIM["lr"] * lr_lambda(
        4, TINY_OPTIM["warmup_steps"], 5, TINY_OPTIM["min_lr_ratio"]
    )
    assert lit._lr == pytest.approx(want)


def test_a_non_finite_loss_stops_before_the_update(fit_tiny, monkeypatch):
    original = LitGPT.loss

    def loss(self, batch):
        value = original(self, batch)
        return value * float("nan") if self.global_step == 2 else value

    monkeypatch.setattr(LitGPT, "loss", loss)
    with pytest.raises(NumericalFault, match=r"non-finite training loss \(nan\) at step 3"):
        fit_tiny(5)


def test_validation_logs_the_loss_and_its_perplexity(fit_tiny):
    trainer, _ = fit_tiny(2, validate=True, val_check_interval=2)
    loss = float(trainer.callback_metrics["val/loss"])
    assert float(trainer.callback_metrics["val/ppl"]) == pytest.approx(math.exp(loss), rel=1e-5)
