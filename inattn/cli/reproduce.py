"""inattn-reproduce: the paper's experiments, one command each (conf/reproduce.yaml)."""

from __future__ import annotations

import importlib

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from inattn.cli.app import run_app
from inattn.errors import ConfigError

EXPERIMENTS = ("vram", "equal_vram", "finetune", "uptrain")


def validate(cfg: DictConfig) -> None:
    for name in cfg.experiments:
        if name not in EXPERIMENTS:
            raise ConfigError("experiments", f"unknown experiment {name!r}; choose {EXPERIMENTS}")
    if cfg.preset.finetune.T1 <= cfg.preset.finetune.T0:
        raise ConfigError("preset.finetune.T1", "T1 must be longer than T0")
    ft = cfg.preset.finetune
    if ft.passkey.trials > 0 and max(ft.passkey.lengths) + 8 > ft.T1:  # room for the answer
        raise ConfigError(
            "preset.finetune.passkey.lengths", f"prompts must be under T1 - 8 = {ft.T1 - 8}"
        )
    for distance in ft.probe.distances:
        if not (ft.T0 < distance and distance + ft.probe.span <= ft.T1):
            raise ConfigError(
                "preset.finetune.probe.distances",
                f"each distance must lie beyond T0 = {ft.T0} and leave room for the span "
                f"within T1 = {ft.T1}, got {distance}",
            )
    if cfg.budget is not None:
        from inattn.units import parse_budget

        parse_budget(cfg.budget)


def task(cfg: DictConfig) -> None:
    launcher = HydraConfig.get().runtime.choices.get("hydra/launcher")
    if launcher in (None, "basic") and cfg.preset.get("launcher"):
        launcher = cfg.preset.launcher  # the preset's choice, unless the command line made one
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
