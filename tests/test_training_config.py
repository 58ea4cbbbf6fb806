"""inattn.training.config: the composed config turned once into typed, checked pieces; each bad
value is one `ConfigError` naming its field (one `error:` line and exit code 2 on the command
line)."""

from __future__ import annotations

import dataclasses

import pytest
from omegaconf import OmegaConf

from inattn.cli import train as train_cli
from inattn.config import to_dict
from inattn.errors import ConfigError
from inattn.model import GPTConfig
from inattn.training.config import RunConfig
from tests.helpers import cli_in_process, compose_train, tiny


def test_the_default_config_becomes_typed_frozen_pieces():
    cfg = compose_train([])
    run = RunConfig.from_cfg(cfg)
    assert isinstance(run.model, GPTConfig) and run.model.arch == "inattn"
    assert (run.variant, run.size, run.seed) == ("inattn", "tiny", 1)
    assert run.optim.betas == (0.9, 0.95)
    assert run.optim.as_hparams() == to_dict(cfg.optim)  # what checkpoints store, unchanged
    assert run.data.options == to_dict(cfg.data) and run.data.num_workers == 0
    assert (run.data.context_length, run.data.batch_size) == (256, 16)
    assert run.trainer.settings == to_dict(cfg.trainer) and run.trainer.max_steps == 300
    assert run.logger.tags == ("inattn", "tiny", "T256", "learned")
    assert run.logger.wandb.active and run.logger.wandb.mode == "offline"
    assert (run.checkpoint.every_n_steps, run.checkpoint.keep) == (100, 0)
    assert run.resolved == to_dict(cfg)
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.optim.lr = 1.0  # type: ignore[misc]


def test_csv_logger_option_turns_wandb_off():
    run = RunConfig.from_cfg(compose_train(["logger=csv", "tags=[a,b]", "group=g1"]))
    assert not run.logger.wandb.active
    assert run.logger.group == "g1" and run.logger.tags[-2:] == ("a", "b")


BAD = {
    "context_length=0": "context_length",
    "batch_size=2.5": "batch_size",
    "trainer.max_steps=0": "trainer.max_steps",
    "num_workers=-1": "num_workers",
    "optim.lr=0": "optim.lr",
    "optim.eps=0": "optim.eps",
    "optim.weight_decay=-0.1": "optim.weight_decay",
    "optim.warmup_steps=-1": "optim.warmup_steps",
    "optim.grad_clip=-1": "optim.grad_clip",
    "optim.betas=[0.9]": "optim.betas",
    "optim.min_lr_ratio=2": "optim.min_lr_ratio",
    "optim.min_lr_ratio=abc": "optim.min_lr_ratio",
    "+optim.momentum=0.9": "optim.momentum",
    "seed=1.5": "seed",
    "seed=-3": "seed",
    "trainer.precision=bf17": "trainer.precision",
    "tags=fast": "tags",
    "group=[a,b]": "group",
    "checkpoint.every_n_steps=-1": "checkpoint.every_n_steps",
    "checkpoint.keep=-2": "checkpoint.keep",
    "resume=true": "resume",
    "resume=/nonexistent/last.ckpt": "resume",
    "logger.wandb.mode=sideways": "logger.wandb.mode",
    "logger.wandb.init_timeout=0": "logger.wandb.init_timeout",
    "+logger.wandb.colour=blue": "logger.wandb.colour",
    "data.val_fraction=2": "data.val_fraction",
    "tokenizer.vocab_size=100": "tokenizer.vocab_size",
    "model.d_model=65": "d_model",
    "position=none": "position",
    "model.context_length=8": "context_length",  # shorter than context_length=256
}


@pytest.mark.parametrize("override", list(BAD))
def test_each_bad_value_is_one_error_naming_its_field(override):
    with pytest.raises(ConfigError) as refused:
        RunConfig.from_cfg(compose_train([override]))
    assert refused.value.field == BAD[override]
    assert "\n" not in str(refused.value)


def test_files_without_train_files_are_refused_before_any_data_is_read():
    with pytest.raises(ConfigError) as refused:
        RunConfig.from_cfg(compose_train(["data=files"]))
    assert refused.value.field == "data.train_files"


def test_csv_logger_with_a_wandb_mode_is_refused():
    cfg = compose_train(["logger=csv", "logger.wandb.mode=online"])
    with pytest.raises(ConfigError, match="use logger=wandb"):
        RunConfig.from_cfg(cfg)


def test_the_pieces_do_not_depend_on_the_dictconfig():
    cfg = compose_train([])
    run = RunConfig.from_cfg(cfg)
    cfg.optim.lr = 5.0
    OmegaConf.update(cfg, "trainer.max_steps", 7)
    assert run.optim.lr == pytest.approx(1e-3) and run.trainer.max_steps == 300


@pytest.mark.parametrize(
    "override, field",
    [("num_workers=-1", "num_workers"), ("+optim.momentum=0.9", "optim.momentum")],
)
def test_the_command_line_reports_one_line_and_exit_2(
    override, field, tmp_path, capsys, monkeypatch
):
    args = [*tiny(tmp_path, tmp_path / "cache"), f"hydra.run.dir={tmp_path}/run", override]
    code, out, err = cli_in_process(train_cli.main, args, capsys, monkeypatch)
    assert code == 2, (out + err)[-3000:]
    (line,) = [x for x in err.splitlines() if x.startswith("error:")]
    assert line.startswith(f"error: {field}: ") and "Traceback" not in out + err
    assert not (tmp_path / "run").exists()


def test_settings_read_from_hydra_resolve_before_the_job(tmp_path, capsys, monkeypatch):
    """The SLURM example sets trainer.num_nodes from Hydra's launcher settings; the check of the
    command line sees them resolved, as the job will."""
    monkeypatch.chdir(tmp_path)
    args = ["--cfg", "job", "local=slurm.example", "hydra.launcher.nodes=3"]
    code, out, err = cli_in_process(train_cli.main, args, capsys, monkeypatch)
    assert code == 0, (out + err)[-3000:]
    assert "num_nodes: ${hydra:launcher.nodes}" in out  # --cfg job shows it as written
