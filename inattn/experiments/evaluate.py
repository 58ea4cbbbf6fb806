"""Evaluations of a trained model beyond the training loop: loss by position, at any context.

Every run of an experiment is evaluated on the same validation blocks (`fixed_blocks`), so the
per-seed differences between variants are not blurred by which text each one happened to see.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from inattn.data.build import build_data
from inattn.errors import DataError
from inattn.model import GPT

FIRST = 8  # "the first positions": a model that uses its context is much better after them


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


def log2_buckets(losses: torch.Tensor) -> list[tuple[int, int, float]]:
    """(first, last, mean loss) over positions 0, 1, 2-3, 4-7, ..., up to T-1: a log-x profile."""
    out, first = [], 0
    while first < len(losses):
        last = min(max(2 * first, 1), len(losses)) - 1
        out.append((first, last, float(losses[first : last + 1].mean())))
        first = last + 1
    return out


def context_use(losses: torch.Tensor, first_losses: torch.Tensor | None = None) -> dict[str, float]:
    """How much the model gains from its context: mean loss over the first FIRST positions
    against the second half of the positions, and the relative drop between them.

    `first_losses`: the first positions measured on more (short) windows, for less noise. A
    causal model's loss at position k < FIRST depends only on the window's first k+1 tokens, so
    a window of FIRST tokens measures exactly what the first FIRST positions of a long block do.
    """
    first = float((losses if first_losses is None else first_losses)[:FIRST].mean())
    second_half = float(losses[len(losses) // 2 :].mean())
    return {
        "loss_first8": first,
        "loss_second_half": second_half,
        "context_gain": 1.0 - second_half / first,
    }


def fixed_blocks(blocks: torch.Tensor, n: int) -> torch.Tensor:
    """n blocks spread evenly over the validation split (the same n for every run)."""
    if len(blocks) < n:
        raise DataError(
            "eval_blocks", f"the validation split has {len(blocks)} blocks, fewer than {n}"
        )
    index = torch.linspace(0, len(blocks) - 1, n).round().long()
    return blocks[index]


def run_val_blocks(run_dir: Path, context: int, cache: str | Path) -> torch.Tensor:
    """Validation blocks at `context`, from the data and tokenizer the run was trained on."""
    run_cfg = OmegaConf.load(Path(run_dir) / ".hydra" / "config.yaml")
    data = build_data(
        OmegaConf.to_container(run_cfg.data),
        OmegaConf.to_container(run_cfg.tokenizer),
        context,
        cache,
    )
    return data.val


def first_windows(stream_blocks: torch.Tensor, n: int) -> torch.Tensor:
    """n windows of FIRST + 1 tokens spread evenly over the validation blocks (any context)."""
    windows = stream_blocks[:, : (stream_blocks.shape[1] // (FIRST + 1)) * (FIRST + 1)]
    windows = windows.reshape(-1, FIRST + 1)
    return fixed_blocks(windows, min(n, len(windows)))


def evaluate_at(
    model: GPT, blocks: torch.Tensor, windows: torch.Tensor | None = None
) -> tuple[dict[str, Any], torch.Tensor]:
    """Mean loss and context use over `blocks` (the first positions on `windows` when given),
    and the per-position losses of `blocks`."""
    losses = position_losses(model, blocks)
    first = None if windows is None else position_losses(model, windows, batch_size=512)
    return {"val_loss": float(losses.mean()), **context_use(losses, first)}, losses


def eval_sets(
    run_dir: str | Path, context: int, design: Any, cache: str | Path
) -> tuple[torch.Tensor, torch.Tensor]:
    """The design's fixed blocks at `context` and its short first-position windows, from the
    data the run was trained on (every run of an experiment shares them)."""
    val = run_val_blocks(Path(run_dir), context, cache)
    return fixed_blocks(val, int(design["eval_blocks"])), first_windows(
        val, int(design["first_windows"])
    )
