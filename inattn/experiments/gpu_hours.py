"""What a plan costs on a named GPU: hours from the FLOPs the plan will spend, not typed in.

    hours = total training FLOPs / (peak dense bf16 FLOP/s x the assumed utilisation) / 3600

Peak numbers are the vendors' dense (not sparse) bf16 tensor-core figures. The utilisation (MFU)
is an assumption stated beside the result; 0.3-0.5 is typical for GPT-2 sizes with fused
attention.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from inattn.errors import ConfigError

PEAK_BF16_FLOPS = {
    "h100-sxm": 989e12,
    "h100-pcie": 756e12,
    "h200": 989e12,
    "a100": 312e12,
    "l40s": 362e12,
    "rtx4090": 165e12,
    "rtx3090": 71e12,
}


def gpu_hours(flops: float, gpu: str, mfu: float) -> float:
    if gpu not in PEAK_BF16_FLOPS:
        raise ConfigError("preset.gpu.name", f"unknown GPU {gpu!r}; choose {list(PEAK_BF16_FLOPS)}")
    if not 0 < mfu <= 1:
        raise ConfigError("preset.gpu.mfu", f"must be in (0, 1], got {mfu}")
    return flops / (PEAK_BF16_FLOPS[gpu] * mfu) / 3600


def plan_flops(design: Mapping[str, Any], pl: Mapping[str, Any], tokens_per_step: int) -> float:
    """Training FLOPs of every run the equal-memory plan lists, over all seeds."""
    per_seed = sum(
        pl["shapes"][f"{r['variant']}/{r['size']}"]["flops_per_token"]
        * r["steps"]
        * tokens_per_step
        for r in pl["runs"]
    )
    return per_seed * len(design["seeds"])


def print_estimate(design: Mapping[str, Any], pl: Mapping[str, Any], gpu: Any) -> None:
    """One paragraph for dry_run: total FLOPs and GPU-hours on the preset's GPU."""
    if not gpu:
        return
    flops = plan_flops(design, pl, pl["tokens_per_step"])
    hours = gpu_hours(flops, gpu["name"], gpu["mfu"])
    print(
        f"\nCompute: {flops:.3e} training FLOPs ({len(pl['runs'])} configurations x "
        f"{len(design['seeds'])} seeds, {pl['tokens_per_step']:,} tokens per step) = "
        f"{hours:,.1f} GPU-hours on one {gpu['name']} at {gpu['mfu']:.0%} of its peak bf16 "
        f"({PEAK_BF16_FLOPS[gpu['name']] / 1e12:,.0f} TFLOP/s), not counting evaluation.",
        flush=True,
    )
