"""One grid point: peak memory of next-token logits, time to first token, decode tokens/s.

Memory follows the spec (section 3): peak bytes of live tensors, weights included, while
`prefill` computes the next-token logits of a T-token context, batch 1, in the model's dtype.
The cache it returns is part of that peak (it is alive when the call ends).
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass

import torch

from inattn.bench.runners import Runner
from inattn.inference import prefill, state_bytes
from inattn.memory import fake_mode_of, fake_tokens, measure_peak
from inattn.model import GPT


@dataclass
class MemoryPoint:
    peak_bytes: int  # tracked live storages, weights included
    weight_bytes: int
    cuda_peak_bytes: int | None  # the CUDA allocator's reading on device=cuda
    state_bytes: int  # what the returned cache holds for the next step


def context_tokens(model: GPT, T: int, seed: int = 0) -> torch.Tensor:
    """A (1, T) batch of random token ids on the model's device (fake for a fake model)."""
    if fake_mode_of(model) is not None:
        return fake_tokens(1, T, model.cfg.vocab_size, like=model)
    return random_tokens(model.cfg.vocab_size, T, model.tok_emb.weight.device, seed)


def random_tokens(vocab: int, T: int, device: torch.device, seed: int = 0) -> torch.Tensor:
    """(1, T) token ids, the same for every mode given the seed."""
    gen = torch.Generator(device=device).manual_seed(seed)
    return torch.randint(vocab, (1, T), generator=gen, device=device)


def memory_point(
    model: GPT, T: int, mode: str, device: str, chunk: int | None, seed: int = 0
) -> MemoryPoint:
    """Measure one (mode, T) on `device` (cpu, meta for a fake model, or cuda)."""
    idx = context_tokens(model, T, seed)
    held = {}

    def run() -> None:
        held["cache"] = prefill(model, idx, mode, chunk=chunk)[1]

    if device == "cuda":  # the first call sets up cuBLAS workspaces: not part of inference memory
        run()
        held.clear()
    if device != "meta":  # frees the last point's tensors; fake ones hold no memory (and a full
        gc.collect()  # collection of a heap with torch loaded costs ~0.3 s, most of a small point)
    peak = measure_peak(run, module=model, inputs=idx, device=device)
    point = MemoryPoint(
        peak.peak_bytes, peak.weight_bytes, peak.cuda_peak_bytes, state_bytes(held["cache"])
    )
    held.clear()
    return point


# ----------------------------------------------------------------------------- timing


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_prefill(runner: Runner, idx: torch.Tensor, capacity: int) -> tuple[float, object]:
    """Seconds from a (1, T) context to its next-token logits; and the cache it built."""
    _sync(idx.device)
    start = time.perf_counter()
    logits, cache = runner.prefill(idx, capacity)
    _sync(idx.device)
    return time.perf_counter() - start, (logits, cache)


def time_decode(runner: Runner, cache: object, T: int, first: torch.Tensor, steps: int) -> float:
    """Tokens/s of `steps` greedy decode steps from `cache` rewound to T positions.

    first: (1,) the token fed first. Feeding each step's argmax keeps the loop realistic.
    """
    runner.rewind(cache, T)
    token = first
    _sync(first.device)
    start = time.perf_counter()
    for _ in range(steps):
        logits, cache = runner.decode(token, cache)
        token = logits.argmax(-1)
    _sync(first.device)
    return steps / (time.perf_counter() - start)
