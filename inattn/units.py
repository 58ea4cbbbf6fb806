"""Units shared by every measuring and reporting module: bytes and memory budgets."""

from __future__ import annotations

import re

from inattn.errors import ConfigError

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
