"""Loss by position, context use, fixed blocks and the copy probe, on hand-made inputs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from inattn.errors import ConfigError, DataError
from inattn.experiments.copy_probe import copy_probe, probe_batch
from inattn.experiments.evaluate import context_use, fixed_blocks, log2_buckets


def test_log2_buckets_cover_every_position_once():
    losses = torch.arange(20, dtype=torch.float64)
    b = log2_buckets(losses)
    assert [(a, z) for a, z, _ in b] == [(0, 0), (1, 1), (2, 3), (4, 7), (8, 15), (16, 19)]
    assert b[3][2] == pytest.approx(5.5)  # mean of 4..7


def test_context_use_from_its_definition():
    losses = torch.tensor([4.0] * 8 + [3.0] * 8 + [2.0] * 16)  # T = 32
    c = context_use(losses)
    assert c["loss_first8"] == 4.0 and c["loss_second_half"] == 2.0
    assert c["context_gain"] == pytest.approx(0.5)


def test_fixed_blocks_are_spread_and_refuse_too_few():
    blocks = torch.arange(100).reshape(100, 1)
    picked = fixed_blocks(blocks, 5)
    assert picked[:, 0].tolist() == [0, 25, 50, 74, 99]
    with pytest.raises(DataError, match="eval_blocks"):
        fixed_blocks(blocks, 101)


class Copier(nn.Module):
    """Predicts the token `distance` positions back (a perfect copier), else uniform."""

    def __init__(self, vocab: int, distance: int):
        super().__init__()
        self.vocab, self.distance = vocab, distance

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        B, T = idx.shape
        logits = torch.zeros(B, T, self.vocab)
        for t in range(self.distance - 1, T):
            logits[torch.arange(B), t, idx[:, t + 1 - self.distance]] = 20.0
        return logits


def test_copy_probe_spans_are_identical_at_the_distance():
    blocks = torch.randint(0, 50, (10, 65))
    batch, start = probe_batch(blocks, span=8, distance=20, trials=4, symbols=range(50), seed=3)
    assert torch.equal(batch[:, start : start + 8], batch[:, start + 20 : start + 28])
    assert start + 20 + 8 == 64  # the second copy ends at the last position
    again, _ = probe_batch(blocks, span=8, distance=20, trials=4, symbols=range(50), seed=3)
    assert torch.equal(batch, again)  # seeded: every model sees the same probe
    with pytest.raises(ConfigError, match="probe.distances"):
        probe_batch(blocks, span=8, distance=60, trials=4, symbols=range(50))


def test_copy_probe_gain_is_large_for_a_copier_and_zero_for_a_uniform_model():
    blocks = torch.randint(0, 50, (10, 65))
    copier = copy_probe(Copier(50, 20), blocks, 8, 20, 6, range(50))
    assert copier["second"] < 0.01 and copier["gain"] > 3.0
    other = copy_probe(Copier(50, 7), blocks, 8, 20, 6, range(50))  # copies from elsewhere
    assert abs(other["gain"]) < 2.0 and other["second"] > 3.0
