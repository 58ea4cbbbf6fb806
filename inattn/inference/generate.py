"""Autoregressive generation over any inference mode."""

from __future__ import annotations

from collections.abc import Callable

import torch

from inattn.errors import ConfigError
from inattn.inference.common import DEFAULT_CHUNK, check_prompt
from inattn.inference.modes import decode_step, get_mode, prefill
from inattn.inference.sampling import check_sampling, sample_next
from inattn.model import GPT


def make_generator(seed: int | torch.Generator | None, device: torch.device) -> torch.Generator:
    """A generator for `seed` (an int, or a generator used as is); None: a randomly seeded one."""
    if isinstance(seed, torch.Generator):
        return seed
    gen = torch.Generator(device=device)
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(seed)
    return gen


@torch.no_grad()
def generate(
    model: GPT,
    idx: torch.Tensor,
    max_new_tokens: int,
    *,
    mode: str | None = None,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | torch.Generator | None = None,
    eos_id: int | None = None,
    stream: Callable[[torch.Tensor], None] | None = None,
    chunk: int | None = DEFAULT_CHUNK,
) -> torch.Tensor:
    """Continue a (B, T) prompt; returns (B, T + n) with n <= max_new_tokens new tokens.

    mode: any of `modes_for(model.cfg.arch)` (None: `state` for InAttention, `kvcache` for
    dense). temperature == 0 is greedy. With `eos_id`, a sequence that emitted it keeps emitting
    it, and generation stops once every sequence has. `stream(tokens)` receives each step's
    new tokens (B,) as soon as they are sampled. The model runs in eval mode throughout.
    """
    if (
        isinstance(max_new_tokens, bool)
        or not isinstance(max_new_tokens, int)
        or max_new_tokens < 0
    ):
        raise ConfigError(
            "max_new_tokens", f"must be a non-negative integer, got {max_new_tokens!r}"
        )
    check_sampling(temperature, top_k, top_p)
    get_mode(model, mode)
    # the last sampled token is never fed back, so the cache holds T + max_new_tokens - 1 positions
    fed = max(max_new_tokens - 1, 0)
    check_prompt(model, idx, extra=fed)
    if max_new_tokens == 0:
        return idx.clone()
    gen = make_generator(seed, idx.device)
    was_training = model.training
    model.eval()
    try:
        logits, cache = prefill(model, idx, mode, capacity=idx.shape[1] + fed, chunk=chunk)
        out, done = [idx], torch.zeros(idx.shape[0], dtype=torch.bool, device=idx.device)
        for step in range(max_new_tokens):
            token = sample_next(logits, temperature, top_k, top_p, generator=gen)  # (B,)
            if eos_id is not None:
                token = token.masked_fill(done, eos_id)
                done |= token == eos_id
            out.append(token[:, None].to(idx.dtype))
            if stream is not None:
                stream(token)
            if step + 1 == max_new_tokens or bool(done.all()):
                break
            logits, cache = decode_step(model, token, cache)
    finally:
        model.train(was_training)
    return torch.cat(out, dim=1)
