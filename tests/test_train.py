"""inattn.training.train and .trainer: the outline of one run, on a composed config, and the
check of the Trainer settings before any data or model is built."""

from __future__ import annotations

import json

import pytest

from inattn.errors import ConfigError
from inattn.training.config import RunConfig
from inattn.training.train import train
from inattn.training.trainer import check_trainer, trainer_kwargs

pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_run_writes_metrics_then_is_not_trained_again(train_cfg, tmp_path, capsys):
    train_cfg.trainer.max_steps = 3
    run_dir = tmp_path / "run"
    metrics = train(train_cfg, run_dir)
    assert json.loads((run_dir / "metrics.json").read_text()) == metrics
    assert metrics["steps"] == 3 and metrics["run_dir"] == str(run_dir)
    assert metrics["tokens_seen"] == 3 * train_cfg.batch_size * train_cfg.context_length
    (summary,) = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert summary.startswith(f"{run_dir}: final val loss {metrics['val_loss']:.4f}")
    assert train(train_cfg, run_dir) == metrics  # already finished: read, not retrained
    assert "already finished" in capsys.readouterr().out


@pytest.mark.parametrize(
    "key, value",
    [("devices", 0), ("strategy", "sideways"), ("val_check_interval", -1), ("colour", "blue")],
)
def test_trainer_settings_lightning_refuses_name_their_key(train_cfg, key, value):
    settings = {**trainer_kwargs(RunConfig.from_cfg(train_cfg)), key: value}
    with pytest.raises(ConfigError) as refused:
        check_trainer(settings)
    assert refused.value.field == f"trainer.{key}"


def test_good_trainer_settings_pass(train_cfg):
    check_trainer(trainer_kwargs(RunConfig.from_cfg(train_cfg)))
