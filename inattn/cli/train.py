"""inattn-train: train a dense or InAttention GPT from the Hydra config tree (conf/train.yaml)."""

from __future__ import annotations

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from inattn.cli.app import run_app
from inattn.config import validate_train_config


def task(cfg: DictConfig) -> float:
    from inattn.train import train  # heavy imports only once the command line is known good

    metrics = train(cfg, Path(HydraConfig.get().runtime.output_dir))
    return metrics["val_loss"]


def main() -> None:
    run_app(task, "train", validate_train_config)


if __name__ == "__main__":
    main()
