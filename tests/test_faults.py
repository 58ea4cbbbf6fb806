"""Faults during a run: non-finite numbers stop it and keep the last good checkpoint; W&B failing
(at start or mid-run) never stops it and loses nothing measured."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest
import torch
import wandb

from inattn.cli.train import EXIT_TRAINING_FAULT, main
from inattn.training.lit import LitGPT
from tests.helpers import (
    cli,
    cli_in_process,
    load_checkpoint,
    measured,
    tiny,
    train_in_process,
)

pytestmark = pytest.mark.usefixtures("one_thread")
BAD_STEP = 4  # the first step whose numbers go wrong


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("faults") / "cache"


def inject(monkeypatch, where: str) -> None:
    """Make step BAD_STEP go wrong: its training loss, its updated weights, or its validation."""
    if where == "weights":
        original_step = LitGPT.optimizer_step

        def optimizer_step(self, *args, **kwargs):
            original_step(self, *args, **kwargs)
            if self.global_step == BAD_STEP - 1:  # counted up after this hook returns
                with torch.no_grad():
                    self.model.tok_emb.weight[0, 0] = float("nan")

        monkeypatch.setattr(LitGPT, "optimizer_step", optimizer_step)
        return
    original_loss = LitGPT.loss

    def loss(self, batch):
        value = original_loss(self, batch)
        bad_train = where == "train loss" and self.training and self.global_step == BAD_STEP - 1
        bad_val = where == "val loss" and not self.training and self.global_step >= BAD_STEP
        return value * float("nan") if bad_train or bad_val else value

    monkeypatch.setattr(LitGPT, "loss", loss)


@pytest.mark.parametrize(
    "where, says, kept",
    [
        ("train loss", "non-finite training loss (nan) at step 4", 3),
        ("weights", "checkpoint at step 4: parameter model.tok_emb.weight is not finite", 3),
        ("val loss", "non-finite validation loss (nan) at step 6", 5),  # validates every 3
    ],
)
def test_non_finite_numbers_stop_the_run_and_keep_the_last_good_checkpoint(
    tmp_path, cache, capsys, monkeypatch, where, says, kept
):
    inject(monkeypatch, where)
    run_dir = tmp_path / "run"
    args = tiny(tmp_path, cache, f"hydra.run.dir={run_dir}")
    code, _, err = cli_in_process(main, args, capsys, monkeypatch)
    assert code == EXIT_TRAINING_FAULT, err[-3000:]
    assert "Traceback" not in err
    (line,) = [x for x in err.splitlines() if x.startswith("error:")]
    assert (
        says in line and f"last good checkpoint is {run_dir}" in line and f"(step {kept})" in line
    )
    last = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert last["global_step"] == kept
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values())
    assert not (run_dir / "checkpoints" / f"step-{kept + 1:07d}.ckpt").exists()
    best = load_checkpoint(run_dir / "checkpoints" / "best.ckpt")
    assert all(torch.isfinite(v).all() for v in best["state_dict"].values())
    assert not (run_dir / "metrics.json").exists()
    # What was measured before the fault is on disk.
    assert [s for s, _ in measured(run_dir, "train/loss")][:kept] == list(range(kept))


def test_wandb_that_cannot_start_leaves_csv_and_one_warning(tmp_path, cache):
    run_dir = tmp_path / "run"
    started = time.monotonic()
    result = cli(
        *tiny(tmp_path, cache, "trainer.max_steps=4", "checkpoint.keep=0"),
        "logger=wandb",
        "logger.wandb.mode=online",
        "logger.wandb.init_timeout=3",
        f"hydra.run.dir={run_dir}",
        env={
            "WANDB_MODE": "online",
            "WANDB_BASE_URL": "http://127.0.0.1:9",  # nothing listens on the discard port
            "WANDB_API_KEY": "0" * 40,
        },
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert time.monotonic() - started < 120  # bounded by init_timeout, not W&B's own retries
    output = (result.stdout + result.stderr).splitlines()
    warnings = [line for line in output if "W&B" in line or line.startswith("wandb:")]
    assert len(warnings) == 1 and "could not start" in warnings[0], warnings
    assert json.loads((run_dir / "metrics.json").read_text())["steps"] == 4
    assert [s for s, _ in measured(run_dir, "train/loss")] == [0, 1, 2, 3]


def test_wandb_failing_mid_run_leaves_csv_and_one_warning(tmp_path, cache, monkeypatch, caplog):
    calls = {"n": 0}

    def broken_log(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 2:
            raise OSError("W&B folder went away")

    monkeypatch.setattr(wandb.sdk.wandb_run.Run, "log", broken_log)
    run_dir = tmp_path / "run"
    with caplog.at_level(logging.WARNING, logger="inattn.training.loggers"):
        metrics = train_in_process(
            tiny(tmp_path, cache, "trainer.max_steps=6", "logger=wandb"), run_dir
        )
    assert metrics["steps"] == 6 and (run_dir / "metrics.json").is_file()
    assert calls["n"] == 3  # W&B was left alone after its first failure
    warned = [r.getMessage() for r in caplog.records if r.name == "inattn.training.loggers"]
    assert len(warned) == 1 and "W&B failed" in warned[0], warned
    assert [s for s, _ in measured(run_dir, "train/loss")] == list(range(6))
    assert len(measured(run_dir, "val/loss")) == 2 + 1  # steps 3 and 6, and the final one
