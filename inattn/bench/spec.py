"""What a benchmark grid measures: modes x sizes x context lengths on one device, in one dtype.

A mode key names a variant (an `arch` option: dense, gqa, mqa, cla, inattn) and an inference mode
of `inattn.inference.MODES` that its architecture has, e.g. `dense/naive`, `cla/kvcache` or
`inattn/state`; `hf/kvcache` is the outside peer (Hugging Face GPT-2 with its K/V cache), timed by
the speed benchmark only. A variant's model is `inattn.model.variant_fields` on the size's shape,
unless `variants` gives its fields (`inattn-bench arch=gqa model.n_kv_head=2`).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

import torch

from inattn.errors import ConfigError
from inattn.inference import modes_for
from inattn.memory import check_device
from inattn.model import VARIANTS, GPTConfig, variant_fields
from inattn.sizes import SHAPE_KEYS as SHAPE_FIELDS
from inattn.units import dtype_name, parse_budget, parse_dtype

MEASURES = ("memory", "speed")
HF_KEY = "hf/kvcache"
ARCH_OF = {v: variant_fields(v, 1)["arch"] for v in VARIANTS}  # gqa, mqa, cla -> dense
OUR_KEYS = tuple(f"{v}/{mode}" for v in VARIANTS for mode in modes_for(ARCH_OF[v]))
MODE_KEYS = (*OUR_KEYS, HF_KEY)
DEFAULT_KEYS = (
    "dense/naive",
    "dense/sdpa",
    "dense/kvcache",
    "mqa/kvcache",
    "cla/kvcache",
    "inattn/state",
    "inattn/kvcache",
)
VARIANT_FIELDS = ("arch", "n_kv_head", "kv_share")  # what a variant sets


# integer fields: (name, smallest allowed, may be null)
INT_FIELDS = (
    ("repeats", 1, False),
    ("decode_steps", 1, False),
    ("warmup", 0, False),
    ("chunk", 1, True),
    ("ttft_max_context", 0, True),
    ("jobs", 1, True),
)


def check_int(name: str, value: Any, minimum: int, nullable: bool) -> None:
    """ConfigError naming `name` unless `value` is an int >= minimum (or None where allowed)."""
    if value is None and nullable:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        what = f"an integer >= {minimum}" + (" or null" if nullable else "")
        raise ConfigError(name, f"{name} must be {what}, got {value!r}")


def split_key(key: str) -> tuple[str, str]:
    """`cla/kvcache` -> (`cla`, `kvcache`): (variant, mode); the HF peer is (`hf`, `kvcache`)."""
    if key not in MODE_KEYS:
        raise ConfigError("modes", f"unknown mode {key!r}; choose from {list(MODE_KEYS)}")
    arch, mode = key.split("/")
    return arch, mode


@dataclass
class BenchSpec:
    """One grid. `sizes` maps a size name to its shape (n_layer, n_head, d_model)."""

    sizes: dict[str, dict[str, int]]
    modes: list[str] = field(default_factory=lambda: list(DEFAULT_KEYS))
    context_lengths: list[int] = field(default_factory=lambda: [256, 512, 1024])
    measure: str = "memory"  # memory | speed
    device: str = "cpu"  # cpu | meta (fake tensors) | cuda
    dtype: str = "fp32"
    memory_limit: int | None = 8 * 2**30  # bytes; points estimated above it are skipped
    model: dict[str, Any] = field(default_factory=dict)  # other GPTConfig fields (vocab, position)
    # a variant's own fields (arch, n_kv_head, kv_share) where they differ from variant_fields
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    chunk: int | None = 1024  # keys per online-softmax step in the fast paths
    seed: int = 0
    repeats: int = 3  # speed: timed rounds per point (median reported), modes interleaved
    warmup: int = 1  # speed: untimed prefills per mode before the first timed round
    decode_steps: int = 8  # speed: tokens decoded per timed round
    recompute_decode: bool = False  # speed: also time decoding for modes that rerun the context
    # speed: time the prefill only up to this context; longer ones decode from a cache of random
    # keys/values of the right shape (a decode step costs the same whatever the numbers are)
    ttft_max_context: int | None = None
    fit_tail: float = 0.5  # fraction of the largest contexts the memory exponent is fitted on
    # memory on fake tensors (device=meta): processes measuring points side by side; null: one
    # per CPU core. Real devices measure one point at a time (they would share memory and time).
    jobs: int | None = 1

    def __post_init__(self) -> None:
        self.validate()

    @property
    def torch_dtype(self) -> torch.dtype:
        return parse_dtype(self.dtype)

    @property
    def workers(self) -> int:
        """Processes for the memory grid: `jobs`, or one per core on fake tensors when null."""
        if self.device != "meta" or self.measure != "memory":
            return 1
        return self.jobs or os.cpu_count() or 1

    @property
    def decode_positions(self) -> int:
        """Positions a learned table needs beyond the longest context (decode steps)."""
        return self.decode_steps if self.measure == "speed" else 0

    def gpt_config(self, size: str, variant: str) -> GPTConfig:
        """The model of one size and variant, its table long enough for every point."""
        skip = ("size", "variant", "context_length", *VARIANT_FIELDS)
        extra = {k: v for k, v in self.model.items() if k not in skip}
        shape = self.sizes[size]
        fields = self.variants.get(variant) or variant_fields(variant, shape["n_head"])
        length = max(self.context_lengths) + self.decode_positions
        return GPTConfig(context_length=length, **shape, **extra, **fields)

    def validate(self) -> None:
        if self.measure not in MEASURES:
            raise ConfigError("measure", f"unknown measure {self.measure!r}; choose {MEASURES}")
        check_device(self.device)
        self.dtype = dtype_name(self.dtype)  # torch's long names become the short ones
        if not self.modes:
            raise ConfigError("modes", "no modes to measure")
        for key in self.modes:
            split_key(key)
        if len(set(self.modes)) != len(self.modes):
            raise ConfigError("modes", f"a mode is listed twice: {self.modes}")
        if HF_KEY in self.modes and self.measure != "speed":
            raise ConfigError(
                "modes", f"{HF_KEY} (the Hugging Face peer) is timed only: bench=speed"
            )
        if self.measure == "speed" and self.device == "meta":
            raise ConfigError(
                "device", "device=meta has fake tensors, which cannot be timed: use cpu or cuda"
            )
        if not self.sizes:
            raise ConfigError("sizes", "no model sizes to measure")
        for name, shape in self.sizes.items():
            missing = [f for f in SHAPE_FIELDS if f not in shape]
            if missing:
                raise ConfigError("sizes", f"size {name!r} lacks {missing}")
        if not self.context_lengths:
            raise ConfigError("context_lengths", "no context lengths to measure")
        for T in self.context_lengths:
            if isinstance(T, bool) or not isinstance(T, int) or T < 1:
                raise ConfigError(
                    "context_lengths", f"context lengths must be positive integers, got {T!r}"
                )
        for name, minimum, nullable in INT_FIELDS:
            check_int(name, getattr(self, name), minimum, nullable)
        if isinstance(self.memory_limit, str):
            self.memory_limit = parse_limit(self.memory_limit)
        check_int("memory_limit", self.memory_limit, 1, nullable=True)
        if self.jobs not in (None, 1) and (self.device != "meta" or self.measure != "memory"):
            raise ConfigError(
                "jobs",
                f"jobs={self.jobs}: points run side by side only for bench=memory on device=meta "
                "(fake tensors); on a real device they would share its memory and time",
            )
        if (
            isinstance(self.fit_tail, bool)
            or not isinstance(self.fit_tail, int | float)
            or not 0.0 < self.fit_tail <= 1.0
        ):
            raise ConfigError("fit_tail", f"fit_tail must be in (0, 1], got {self.fit_tail!r}")
        if HF_KEY in self.modes:
            self.check_hf_peer()
        for name, fields in self.variants.items():
            if name not in VARIANTS or set(fields) != set(VARIANT_FIELDS):
                raise ConfigError("variants", f"{name}: expected {VARIANT_FIELDS} of a variant")
        for size in self.sizes:  # GPTConfig's own checks (divisibility, positions) for every pair
            for variant in {split_key(k)[0] for k in self.modes} - {"hf"}:
                self.gpt_config(size, variant)

    def check_hf_peer(self) -> None:
        """The Hugging Face GPT-2 peer copies a dense model: GPT-2's own design only."""
        cfg = self.gpt_config(next(iter(self.sizes)), "dense")
        if cfg.position != "learned" or not cfg.tie_weights or not cfg.bias:
            raise ConfigError(
                "modes",
                f"{HF_KEY} (GPT-2) needs position=learned, tie_weights and bias; got "
                f"position={cfg.position}, tie_weights={cfg.tie_weights}, bias={cfg.bias}",
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def parse_limit(value: Any) -> int | None:
    """Bytes of `8GiB`, `512MiB`, a number of bytes; null means no limit."""
    if value is None:
        return None
    try:
        return parse_budget(value)
    except ConfigError as err:
        raise ConfigError("memory_limit", err.message) from None
