"""Autoregressive generation over any inference mode."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from inattn.errors import ConfigError
from inattn.inference.common import DEFAULT_CHUNK, check_prompt
from inattn.inference.modes import Cache, decode_step, get_mode, prefill
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


def max_new_tokens_for(model: GPT, prompt_length: int) -> int | None:
    """How many tokens can follow a prompt of this length; None: no limit (rope, alibi, none).

    A learned position table has context_length rows. The last sampled token is never fed
    back, so a T-token prompt leaves room for context_length - T + 1 new tokens.
    """
    if model.cfg.position != "learned":
        return None
    return max(model.cfg.context_length - prompt_length + 1, 0)


def check_room(model: GPT, prompt_length: int, max_new_tokens: int) -> None:
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int):
        raise ConfigError("max_new_tokens", f"must be an integer, got {max_new_tokens!r}")
    if max_new_tokens < 0:
        raise ConfigError("max_new_tokens", f"must be >= 0, got {max_new_tokens}")
    room = max_new_tokens_for(model, prompt_length)
    if room is not None and max_new_tokens > room:
        raise ConfigError(
            "max_new_tokens",
            f"a prompt of {prompt_length} tokens leaves room for {room} new tokens, not "
            f"{max_new_tokens}: the learned position table ends at context_length="
            f"{model.cfg.context_length} (use max_new_tokens<={room}, or a model with rope or "
            "alibi positions)",
        )


def stream_tokens(
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
    chunk: int | None = DEFAULT_CHUNK,
) -> Iterator[tuple[torch.Tensor, Cache]]:
    """Continue a (B, T) prompt one step at a time: yields (new tokens (B,), cache) per step.

    Arguments as `generate`; they are checked at the call, before the first step. The cache
    reserves T + max_new_tokens - 1 positions up front (the last token is never fed back), so
    `state_bytes(cache)` is what the whole generation holds.
    """
    check_prompt(model, idx)
    check_room(model, idx.shape[1], max_new_tokens)
    check_sampling(temperature, top_k, top_p)
    get_mode(model, mode)
    gen = make_generator(seed, idx.device)
    return _steps(model, idx, max_new_tokens, mode, (temperature, top_k, top_p), gen, eos_id, chunk)


@torch.no_grad()
def _steps(
    model: GPT,
    idx: torch.Tensor,
    max_new_tokens: int,
    mode: str | None,
    sampling: tuple[float, int | None, float | None],
    gen: torch.Generator,
    eos_id: int | None,
    chunk: int | None,
) -> Iterator[tuple[torch.Tensor, Cache]]:
    if max_new_tokens == 0:
        return
    capacity = idx.shape[1] + max_new_tokens - 1
    was_training = model.training
    model.eval()
    try:
        logits, cache = prefill(model, idx, mode, capacity=capacity, chunk=chunk)
        done = torch.zeros(idx.shape[0], dtype=torch.bool, device=idx.device)
        for step in range(max_new_tokens):
            token = sample_next(logits, *sampling, generator=gen)  # (B,)
            if eos_id is not None:
                token = token.masked_fill(done, eos_id)
                done |= token == eos_id
            yield token, cache
            if step + 1 == max_new_tokens or bool(done.all()):
                break
            logits, cache = decode_step(model, token, cache)
    finally:
        model.train(was_training)


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
    steps = stream_tokens(
        model,
        idx,
        max_new_tokens,
        mode=mode,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        seed=seed,
        eos_id=eos_id,
        chunk=chunk,
    )
    out = [idx]
    for token, _ in steps:
        out.append(token[:, None].to(idx.dtype))
        if stream is not None:
            stream(token)
    return torch.cat(out, dim=1)
