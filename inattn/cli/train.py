"""inattn-train: train a dense or InAttention GPT from the Hydra config tree (conf/train.yaml).

Exit codes: 0 done (or already done), 2 bad input (one line naming the field or file), 3 the
training itself went wrong (a non-finite loss: the checkpoints keep the last good state).
"""

from __future__ import annotations

import sys
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from inattn.cli.app import run_app
from inattn.errors import ConfigError
from inattn.training.config import RunConfig

EXIT_TRAINING_FAULT = 3
PROCESS_STRATEGIES = ("ddp", "fsdp", "deepspeed")  # strategies that start one process per device


def check_run(cfg: DictConfig, multirun: bool) -> None:
    """Command-line combinations that cannot do what they say."""
    given = {o.split("=", 1)[0].lstrip("+~") for o in cfg.hydra.overrides.hydra}
    folder = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    if cfg.get("resume") == "auto" and folder not in given:
        raise ConfigError(
            "resume",
            f"resume=auto continues the checkpoints of a folder you name: add {folder}=<folder>",
        )
    from inattn.checkpoints.init_from import check_source  # before any folder is written

    check_source(cfg, {o.split("=", 1)[0].lstrip("+~") for o in cfg.hydra.overrides.task})
    strategy, devices = str(cfg.trainer.strategy), cfg.trainer.devices
    local = "submitit" not in str(cfg.hydra.launcher._target_)
    if multirun and local and strategy.startswith(PROCESS_STRATEGIES) and devices != 1:
        raise ConfigError(
            "trainer.strategy",
            f"{strategy} starts its processes by rerunning the command, which a local -m sweep "
            "cannot do: run each job alone, or launch the sweep with hydra/launcher=submitit_slurm",
        )


def task(cfg: DictConfig) -> float:
    # heavy imports only once the command line is known good
    from inattn.errors import NumericalFault
    from inattn.training.train import train

    try:
        metrics = train(cfg, Path(HydraConfig.get().runtime.output_dir))
    except NumericalFault as fault:
        print(f"error: training stopped: {fault}", file=sys.stderr)
        sys.exit(EXIT_TRAINING_FAULT)
    return metrics["val_loss"]


def main() -> None:
    run_app(task, "train", RunConfig.from_cfg, check_run)


if __name__ == "__main__":
    main()
