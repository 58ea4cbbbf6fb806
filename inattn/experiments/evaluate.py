"""Evaluations of a trained model beyond the training loop: loss by position, in buckets."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from inattn.model import GPT


@torch.no_grad()
def position_losses(model: GPT, blocks: torch.Tensor, batch_size: int = 8) -> torch.Tensor:
    """Mean next-token loss at each position 0..T-1 over packed blocks (N, T+1)."""
    model.eval()
    total = torch.zeros(blocks.shape[1] - 1, dtype=torch.float64)
    for start in range(0, len(blocks), batch_size):
        block = blocks[start : start + batch_size].long()
        logits = model(block[:, :-1])
        loss = F.cross_entropy(logits.transpose(1, 2).float(), block[:, 1:], reduction="none")
        total += loss.sum(0).double()
    return total / len(blocks)


def buckets(losses: torch.Tensor, n: int) -> list[tuple[int, int, float]]:
    """(first position, last position, mean loss) for n equal spans of positions."""
    edges = torch.linspace(0, len(losses), n + 1).round().long().tolist()
    return [
        (a, b - 1, float(losses[a:b].mean()))
        for a, b in zip(edges, edges[1:], strict=False)
        if b > a
    ]
