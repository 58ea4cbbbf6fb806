"""Inference memory, measured: peak bytes of live tensor storages (spec, section 3).

`MemoryTracker` is a `TorchDispatchMode` that sees every op's outputs. A storage is counted the
first time an op returns it (views share their base's storage, so they add nothing) and is
subtracted by a `weakref.finalize` on the storage when it dies. Weights are registered up front
with `track_module`, so the peak includes them once.

The same tracker runs on real tensors and under `FakeTensorMode`, where paper-scale shapes are
measured without allocating anything. Fake tensors keep their real device, so ops dispatch as
they would for real: on cpu, `scaled_dot_product_attention` takes the fused kernel and never forms
the T x T scores. Bare `meta` tensors do not: there sdpa falls back to the math path, so the
"meta" measuring mode is built on fake tensors instead.

Measuring a paper-scale GPT without allocating it::

    from inattn.model import GPT, GPTConfig
    cfg = GPTConfig(arch="dense", n_layer=12, n_head=12, d_model=768, vocab_size=50257,
                    context_length=4096)
    model = fake_module(lambda: GPT(cfg), dtype=torch.bfloat16)  # fake weights, cpu device
    idx = fake_tokens(1, 4096, cfg.vocab_size, like=model)       # same fake mode as the weights
    peak = measure_peak(lambda: model(idx, last_only=True), module=model, inputs=idx,
                        device="meta")
    peak.peak_bytes, peak.weight_bytes

Fake tensors on a `cuda` device are accepted, but on a machine without CUDA sdpa cannot query the
hardware and takes the math path: measure fake models on `cpu` unless a GPU is present.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from inattn.errors import ConfigError

DEVICES = ("cpu", "meta", "cuda")


def check_device(device: str) -> None:
    """A measuring device this machine can use: cpu, meta (fake tensors), or cuda if present."""
    if device not in DEVICES:
        raise ConfigError("device", f"unknown device {device!r}; choose one of {DEVICES}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", "device=cuda but no CUDA device is available")


def _storages(obj: Any) -> list[torch.UntypedStorage]:
    """The distinct untyped storages of every tensor in a pytree (tensor, tuple, list, dict)."""
    seen: dict[int, torch.UntypedStorage] = {}
    for t in tree_leaves(obj):
        if not isinstance(t, torch.Tensor) or t.layout != torch.strided:
            continue
        st = t.untyped_storage()
        # Storage Python objects are preserved while their storage lives, so `id` is a stable key
        # that views of one tensor share (fake storages have no data pointer to key on).
        seen.setdefault(id(st), st)
    return list(seen.values())


def bytes_of(obj: Any) -> int:
    """Bytes held by the tensors of a pytree, each storage counted once (views, ties are free)."""
    return sum(st.nbytes() for st in _storages(obj))


def module_tensors(module: nn.Module) -> list[torch.Tensor]:
    """Parameters and buffers of a module (tied weights appear once)."""
    return [*module.parameters(), *module.buffers()]


class MemoryTracker(TorchDispatchMode):
    """Current and peak bytes of live tensor storages, weights included once registered.

    Counted: storages returned by ops run inside the tracker, and those passed to `track` /
    `track_module`. A storage made before the tracker and never registered is counted from the
    first op that returns it (e.g. a view of it), so register inputs that should count from the
    start. Under `FakeTensorMode`, enter the tracker inside the fake mode so it sees fake outputs.
    """

    def __init__(self) -> None:
        super().__init__()
        self._live: dict[int, int] = {}  # id(storage) -> bytes counted for it
        self.current_bytes = 0
        self.peak_bytes = 0
        self.weight_bytes = 0

    # -- bookkeeping --

    def _add(self, st: torch.UntypedStorage) -> int:
        key, nbytes = id(st), st.nbytes()
        old = self._live.get(key)
        if old is None:
            ref = weakref.ref(self)
            weakref.finalize(st, _release, ref, key).atexit = False
            old = 0
        elif old == nbytes:
            return 0
        self._live[key] = nbytes  # new, or resized in place (out= ops, resize_)
        self.current_bytes += nbytes - old
        self.peak_bytes = max(self.peak_bytes, self.current_bytes)
        return nbytes - old

    def _release(self, key: int) -> None:
        self.current_bytes -= self._live.pop(key, 0)

    # -- public API --

    def track(self, *tensors: Any) -> int:
        """Register existing tensors (any pytree) as live; returns the bytes newly counted."""
        return sum(self._add(st) for st in _storages(tensors))

    def track_module(self, module: nn.Module) -> int:
        """Register a module's parameters and buffers; they count in `weight_bytes` too."""
        added = self.track(module_tensors(module))
        self.weight_bytes += added
        return added

    def reset_peak(self) -> None:
        """Start a new peak from what is live now."""
        self.peak_bytes = self.current_bytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for st in _storages(out):
            self._add(st)
        return out


def _release(ref: weakref.ref, key: int) -> None:
    # Module-level so the finalizer holds the tracker weakly: a dead tracker is not kept alive.
    tracker = ref()
    if tracker is not None:
        tracker._release(key)


# ----------------------------------------------------------------------------- fake tensors


def fake_mode_of(*objs: Any) -> FakeTensorMode | None:
    """The fake mode that owns the first fake tensor among modules / pytrees of tensors."""
    for obj in objs:
        leaves = module_tensors(obj) if isinstance(obj, nn.Module) else tree_leaves(obj)
        for t in leaves:
            if isinstance(t, FakeTensor):
                return t.fake_mode
    return None


def fake_module(
    factory: Callable[[], nn.Module],
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    mode: FakeTensorMode | None = None,
) -> nn.Module:
    """Build `factory()` with fake parameters (shapes only, nothing allocated), cast and moved.

    Floating parameters and buffers take `dtype`, as `module.to(dtype)` would; `module.to` itself
    refuses fake parameters (it swaps them in place, which the fake mode's references prevent),
    so each one is replaced instead, shared ones (tied weights) by one shared replacement.
    """
    mode = mode or FakeTensorMode()
    with mode:
        module = factory()
        _cast(module, dtype, torch.device(device))
    return module


def _cast(module: nn.Module, dtype: torch.dtype, device: torch.device) -> None:
    done: dict[int, torch.Tensor] = {}

    def convert(t: torch.Tensor) -> torch.Tensor:
        if id(t) not in done:
            new = t.detach().to(device=device, dtype=dtype if t.is_floating_point() else None)
            if isinstance(t, nn.Parameter):
                new = nn.Parameter(new, requires_grad=t.requires_grad)
            done[id(t)] = new
        return done[id(t)]

    for m in module.modules():
        for table in (m._parameters, m._buffers):
            for name, t in table.items():
                if t is not None:
                    table[name] = convert(t)


def fake_tokens(
    B: int,
    T: int,
    vocab: int,
    *,
    like: nn.Module | torch.Tensor,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """A fake (B, T) token batch in the fake mode of `like` (ops cannot mix two fake modes)."""
    mode = fake_mode_of(like)
    if mode is None:
        raise ConfigError("like", "fake_tokens needs a fake module or tensor to share its mode")
    if device is None:
        ref = next(iter(module_tensors(like))) if isinstance(like, nn.Module) else like
        device = ref.device
    with mode:
        return torch.randint(vocab, (B, T), device=device)


# ----------------------------------------------------------------------------- one measurement


@dataclass
class PeakMeasurement:
    """Peak bytes of one call, weights included; `cuda_peak_bytes` only on a CUDA device."""

    peak_bytes: int  # tracked: live storages, weights and registered inputs included
    weight_bytes: int
    cuda_peak_bytes: int | None
    device: str

    @property
    def activation_bytes(self) -> int:
        return self.peak_bytes - self.weight_bytes


def measure_peak(
    fn: Callable[[], Any],
    *,
    module: nn.Module | None = None,
    inputs: Any = (),
    device: str = "cpu",
    grad: bool = False,
) -> PeakMeasurement:
    """Peak live bytes while `fn()` runs; `module`'s weights and `inputs` count from the start.

    device: `cpu` (real tensors), `meta` (fake tensors: the fake mode of `module` / `inputs`, or a
    fresh one that turns real inputs into fake ones), or `cuda`, which also reads the allocator's
    `max_memory_allocated`. That reading is reported net of device memory that was live before the
    call and is unknown to the tracker, so both numbers count the same tensors (up to the
    allocator's 512-byte rounding). `fn` runs without autograd unless `grad`: inference keeps no
    activations for a backward pass.
    """
    check_device(device)
    if device == "meta":
        mode = fake_mode_of(*([module] if module is not None else []), inputs)
        context = mode or FakeTensorMode(allow_non_fake_inputs=True)
    else:
        context = nullcontext()

    tracker = MemoryTracker()
    cuda_peak = None
    with context, tracker, torch.set_grad_enabled(grad):
        if module is not None:
            tracker.track_module(module)
        tracker.track(inputs)
        if device == "cuda":
            known = [*(module_tensors(module) if module is not None else []), inputs]
            untracked = _cuda_start(known)
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
            cuda_peak = torch.cuda.max_memory_allocated() - untracked
    return PeakMeasurement(tracker.peak_bytes, tracker.weight_bytes, cuda_peak, device)


def _cuda_start(known: Any) -> int:
    """Reset the allocator's peak; return the device bytes now live that the tracker lacks."""
    torch.cuda.synchronize()
    on_device = [t for t in tree_leaves(known) if isinstance(t, torch.Tensor) and t.is_cuda]
    untracked = torch.cuda.memory_allocated() - bytes_of(on_device)
    torch.cuda.reset_peak_memory_stats()
    return untracked
