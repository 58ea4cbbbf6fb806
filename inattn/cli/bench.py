"""inattn-bench: inference memory or speed against context length for every mode (conf/bench.yaml).

Writes results.csv, results.json and a PNG into the run folder, prints the table, and logs both
to W&B (offline unless wandb.mode says otherwise). Exit code 2 with one line on bad input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from inattn.bench.spec import VARIANT_FIELDS, BenchSpec, parse_limit
from inattn.cli.app import run_app
from inattn.config import to_dict
from inattn.errors import ConfigError
from inattn.model import VARIANTS, variant_fields
from inattn.reporting.wandb_log import WANDB_MODES
from inattn.sizes import SHAPE_KEYS, size_shape

SPEED_KEYS = ("repeats", "warmup", "decode_steps", "recompute_decode", "ttft_max_context")


def size_shapes(cfg: DictConfig) -> dict[str, dict[str, int]]:
    """The sizes to measure: the `size` group's choice, or each name of `sizes` from conf/size."""
    if cfg.sizes is None:
        return {str(cfg.model.size): {k: cfg.model[k] for k in SHAPE_KEYS}}
    names = list(cfg.sizes) if not isinstance(cfg.sizes, str) else [cfg.sizes]
    return {str(name): size_shape(str(name), "sizes") for name in names}


def variant_overrides(cfg: DictConfig, variant: str) -> dict[str, dict[str, Any]]:
    """{variant: its fields} when the command line changed them (`arch=gqa model.n_kv_head=2`);
    empty otherwise, so that each size gets the variant's own rule (gqa: about half its heads)."""
    node = to_dict(cfg.model)
    fields = {k: node.get(k) for k in VARIANT_FIELDS}
    if variant not in VARIANTS:
        raise ConfigError("arch", f"unknown variant {variant!r}; choose one of {VARIANTS}")
    return {} if fields == variant_fields(variant, node["n_head"]) else {variant: fields}


def spec_from_config(cfg: DictConfig) -> BenchSpec:
    """The grid a composed config asks for; every field checked (ConfigError names the key)."""
    if not OmegaConf.is_list(cfg.modes):
        raise ConfigError("modes", f"modes must be a list such as [a,b], got {cfg.modes!r}")
    modes = [str(m) for m in cfg.modes]
    variant = cfg.model.get("variant")
    variants = {}
    if variant is not None:  # arch=<variant> keeps that variant's modes only (dense: and hf's)
        keep = (variant, "hf") if variant == "dense" else (variant,)
        modes = [m for m in modes if m.split("/")[0] in keep]
        if not modes:
            raise ConfigError("modes", f"none of the modes {list(cfg.modes)} is for arch={variant}")
        variants = variant_overrides(cfg, variant)
    skip = ("size", "variant", *VARIANT_FIELDS, *SHAPE_KEYS)
    model = {k: v for k, v in to_dict(cfg.model).items() if k not in skip}
    speed = {k: cfg[k] for k in SPEED_KEYS if k in cfg}
    for key in ("modes", "context_lengths"):
        if not OmegaConf.is_list(cfg[key]):
            raise ConfigError(key, f"{key} must be a list such as [a,b], got {cfg[key]!r}")
    threads = cfg.get("threads")
    if threads is not None and (
        isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
    ):
        raise ConfigError("threads", f"threads must be a positive integer or null, got {threads!r}")
    if cfg.wandb.mode not in WANDB_MODES:
        raise ConfigError("wandb.mode", f"choose one of {WANDB_MODES}, got {cfg.wandb.mode!r}")
    return BenchSpec(
        sizes=size_shapes(cfg),
        modes=modes,
        context_lengths=list(cfg.context_lengths),
        measure=cfg.measure,
        device=cfg.device,
        dtype=cfg.dtype,
        memory_limit=parse_limit(cfg.memory_limit),
        model=model,
        variants=variants,
        chunk=cfg.chunk,
        jobs=cfg.get("jobs", 1),
        seed=cfg.seed,
        fit_tail=cfg.fit_tail,
        **speed,
    )


def task(cfg: DictConfig) -> None:
    import torch

    from inattn.bench.run import run_bench  # heavy imports once the command line is known good

    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    spec = spec_from_config(cfg)
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    result = run_bench(spec, out_dir, wandb=to_dict(cfg.wandb), progress=cfg.progress)
    print(result.table)
    for name, path in result.files.items():
        print(f"{name}: {path}")
    if cfg.wandb.mode != "disabled":
        print(f"wandb ({cfg.wandb.mode}): " + ("logged" if result.wandb_logged else "failed"))


def main() -> None:
    run_app(task, "bench", spec_from_config)


if __name__ == "__main__":
    main()
