"""Both variants can memorise a small batch: the training loss falls far below unigram entropy."""

from __future__ import annotations

import math

import pytest
import torch

from inattn.training.lit import LitGPT, lr_lambda

MODEL = dict(vocab_size=64, context_length=32, n_layer=2, n_head=2, d_model=64)
OPTIM = dict(
    lr=3e-3,
    weight_decay=0.0,
    betas=[0.9, 0.95],
    eps=1e-8,
    warmup_steps=10,
    min_lr_ratio=1.0,
    grad_clip=1.0,
)


def unigram_entropy(tokens: torch.Tensor) -> float:
    p = torch.bincount(tokens.flatten()).float()
    p = p[p > 0] / p.sum()
    return float(-(p * p.log()).sum())


@pytest.mark.parametrize("arch", ["dense", "inattn"])
def test_tiny_model_overfits_small_batch(arch):
    torch.manual_seed(0)
    lit = LitGPT({**MODEL, "arch": arch}, OPTIM, max_steps=200)
    data = torch.randint(0, 64, (4, 33))
    batch = (data[:, :-1], data[:, 1:])
    optimizer = torch.optim.AdamW(lit.parameters(), lr=OPTIM["lr"])
    for _ in range(200):
        loss = lit.loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    entropy = unigram_entropy(batch[1])
    assert entropy > 3.0
    assert lit.loss(batch).item() < 0.1 * entropy


def test_lr_schedule_warms_up_then_decays_to_floor():
    lrs = [lr_lambda(s, warmup=10, total=100, min_ratio=0.1) for s in range(120)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False))
    assert lrs[100] == pytest.approx(0.1) and lrs[119] == pytest.approx(0.1)
    assert lrs[55] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
