"""Units shared by every measuring, reporting and command-line module: bytes, memory budgets,
and the names of dtypes."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from inattn.errors import ConfigError

if TYPE_CHECKING:
    import torch

KiB, MiB, GiB = 2**10, 2**20, 2**30
# Named cards: usable memory is taken as the nominal size (no allowance for the driver/context).
CARDS = {
    "laptop-4gb": 4 * GiB,
    "rtx3060-12gb": 12 * GiB,
    "rtx4090-24gb": 24 * GiB,
    "t4-16gb": 16 * GiB,
    "a100-40gb": 40 * GiB,
    "a100-80gb": 80 * GiB,
    "h100-80gb": 80 * GiB,
}
UNITS = {
    "": 1,
    "b": 1,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
}


def parse_budget(budget: str | int | float) -> int:
    """Bytes from `12GiB`, `512MiB`, `8GB`, a plain number of bytes, or a card name in CARDS."""
    if isinstance(budget, bool):
        raise ConfigError("budget", f"not a memory size: {budget!r}")
    if isinstance(budget, int | float):
        value = int(budget)
    else:
        text = str(budget).strip().lower()
        if text in CARDS:
            return CARDS[text]
        match = re.fullmatch(r"([0-9]*\.?[0-9]+)\s*([a-z]*)", text)
        if not match or match.group(2) not in UNITS:
            cards = ", ".join(CARDS)
            raise ConfigError(
                "budget",
                f"not a memory size: {budget!r} (use e.g. 12GiB, 512MiB or a card: {cards})",
            )
        value = int(float(match.group(1)) * UNITS[match.group(2)])
    if value <= 0:
        raise ConfigError("budget", f"budget must be positive, got {budget!r}")
    return value


def human_bytes(n: float) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} B"


# The short names are the ones conf/, the docs and the results use; torch's own names (float32,
# bfloat16, ...) are accepted as synonyms, so a value copied from torch or the harness works too.
DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "fp64": "float64"}


def dtype_name(name: Any, field: str = "dtype", choices: Sequence[str] = tuple(DTYPES)) -> str:
    """The short name of `name` (fp32, bf16, fp16, fp64, or torch's float32, ...), checked
    against `choices`; no torch import, so a command line is checked before torch loads."""
    short = {long: short for short, long in DTYPES.items()}.get(name, name)
    if not isinstance(name, str) or short not in choices:
        raise ConfigError(field, f"unknown dtype {name!r}; choose one of {tuple(choices)}")
    return short


def parse_dtype(
    name: Any, field: str = "dtype", choices: Sequence[str] = tuple(DTYPES)
) -> torch.dtype:
    """The torch dtype of a short name (fp32, bf16, fp16, fp64) or of torch's own name."""
    import torch

    return getattr(torch, DTYPES[dtype_name(name, field, choices)])
