"""A long-range probe that is neither at its floor nor at its ceiling: copy a random span.

Into a validation block of T tokens, a span of `span` random tokens is written twice: once at
`start`, and again `distance` tokens later. A model that reads far enough back can predict the
second copy from the first; one that cannot sees random tokens both times. The probe reports

    first   mean loss on the first copy (random tokens: nothing to predict them from)
    second  mean loss on the second copy
    gain    first - second: 0 when the model does not copy, up to `first` when it copies exactly

The first token of each copy is left out (nothing can predict where a span starts). Distances
between the pretraining context T0 and the longer context T1 test exactly what fine-tuning to
T1 should add. Spans, positions and blocks come from a seeded generator: every model sees the
same probe.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from inattn.errors import ConfigError
from inattn.model import GPT


def probe_batch(
    blocks: torch.Tensor,
    span: int,
    distance: int,
    trials: int,
    symbols: Sequence[int],
    seed: int = 0,
) -> tuple[torch.Tensor, int]:
    """(trials, T+1) token blocks with the span written twice, and the span's first position."""
    T = blocks.shape[1] - 1
    start = T - distance - span  # the second copy ends at the block's last position
    if start < 0 or span < 2:
        raise ConfigError(
            "probe.distances", f"distance {distance} + span {span} does not fit a block of {T}"
        )
    gen = torch.Generator().manual_seed(seed)
    rows = torch.randint(0, len(blocks), (trials,), generator=gen)
    out = blocks[rows].long().clone()
    table = torch.tensor(list(symbols), dtype=torch.long)
    spans = table[torch.randint(0, len(table), (trials, span), generator=gen)]
    out[:, start : start + span] = spans
    out[:, start + distance : start + distance + span] = spans
    return out, start


@torch.no_grad()
def copy_probe(
    model: GPT,
    blocks: torch.Tensor,
    span: int,
    distance: int,
    trials: int,
    symbols: Sequence[int],
    seed: int = 0,
) -> dict[str, float]:
    """Mean loss on the first and the second copy, and the gain between them."""
    model.eval()
    batch, start = probe_batch(blocks, span, distance, trials, symbols, seed)
    logits = model(batch[:, :-1])
    loss = F.cross_entropy(logits.transpose(1, 2).float(), batch[:, 1:], reduction="none")
    # loss[:, i] predicts token i+1: a copy at [s, s+span) is predicted at positions s..s+span-2
    first = loss[:, start : start + span - 1].mean()
    second = loss[:, start + distance : start + distance + span - 1].mean()
    return {"first": float(first), "second": float(second), "gain": float(first - second)}
