"""inattn-reproduce: the paper's experiments, one command each (conf/reproduce.yaml)."""

from __future__ import annotations

import importlib

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from inattn.cli.app import run_app
from inattn.errors import ConfigError

EXPERIMENTS = ("vram", "equal_vram", "finetune")


def validate(cfg: DictConfig) -> None:
    for name in cfg.experiments:
        if name not in EXPERIMENTS:
            raise ConfigError("experiments", f"unknown experiment {name!r}; choose {EXPERIMENTS}")
    if cfg.preset.finetune.T1 <= cfg.preset.finetune.T0:
        raise ConfigError("preset.finetune.T1", "T1 must be longer than T0")
    ft = cfg.preset.finetune
    if max(ft.passkey.lengths) + 8 > ft.T1:  # room for the 5-digit answer
        raise ConfigError(
            "preset.finetune.passkey.lengths", f"prompts must be under T1 - 8 = {ft.T1 - 8}"
        )
    if cfg.budget is not None:
        from inattn.experiments.budget import parse_budget

        parse_budget(cfg.budget)


def task(cfg: DictConfig) -> None:
    launcher = HydraConfig.get().runtime.choices.get("hydra/launcher")
    reports = []
    for name in cfg.experiments:
        print(f"\n=== {name} ({cfg.preset.name}) ===", flush=True)
        experiment = importlib.import_module(f"inattn.experiments.{name}")
        report = experiment.run(cfg, launcher)
        if report is not None:
            reports.append(report)
    for report in reports:
        print(f"report: {report}")


def main() -> None:
    run_app(task, "reproduce", validate)


if __name__ == "__main__":
    main()
