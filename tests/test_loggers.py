"""inattn.training.loggers: the CSV log that a resumed run continues, one row per optimizer
step, W&B failures turned into one warning, and which loggers a config gets."""

from __future__ import annotations

import csv
import dataclasses
import logging
from pathlib import Path

import pytest

from inattn.training import loggers
from inattn.training.config import LoggerConfig, WandbConfig, run_tags
from inattn.training.loggers import (
    GuardedWandbLogger,
    ResumableCSVLogger,
    StepLog,
    build_loggers,
    finish_loggers,
    wandb_run_id,
)


class Warnings(logging.Handler):
    """The warnings of `inattn.training.loggers`, caught at that logger itself: other tests
    (Hydra apps, the harness) reconfigure the root logger, which pytest's caplog listens to."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def warned():
    logger = logging.getLogger("inattn.training.loggers")
    handler, level, disabled = Warnings(), logger.level, logger.disabled
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    logger.disabled = False
    yield handler.messages
    logger.removeHandler(handler)
    logger.setLevel(level)
    logger.disabled = disabled


def rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "csv" / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def log_steps(run_dir: Path, steps: range, resume_step: int | None = None, tag: float = 0.0):
    logger = ResumableCSVLogger(str(run_dir), resume_step=resume_step)
    for step in steps:
        logger.log_metrics({"train/loss": tag + step}, step=step)
    logger.finalize("success")


def test_a_resumed_csv_log_keeps_the_rows_before_the_checkpoint(tmp_path):
    log_steps(tmp_path, range(6))
    log_steps(tmp_path, range(3, 8), resume_step=3, tag=100.0)  # steps 3.. trained again
    got = [(int(r["step"]), float(r["train/loss"])) for r in rows(tmp_path)]
    assert got == [(0, 0.0), (1, 1.0), (2, 2.0), *((s, 100.0 + s) for s in range(3, 8))]


def test_a_fresh_run_in_a_used_folder_starts_a_fresh_csv_log(tmp_path):
    log_steps(tmp_path, range(4))
    log_steps(tmp_path, range(2), tag=50.0)
    assert [float(r["train/loss"]) for r in rows(tmp_path)] == [50.0, 51.0]


def test_step_log_writes_one_row_per_optimizer_step(fit_tiny, tmp_path):
    csv_logger = ResumableCSVLogger(str(tmp_path))
    fit_tiny(6, callbacks=[StepLog()], loggers=[csv_logger], log_every_n_steps=1)
    train = [r for r in rows(tmp_path) if r.get("train/loss")]
    assert [int(r["step"]) for r in train] == list(range(6))  # 0-based, as validation rows
    assert all(float(r["train/tokens_per_sec"]) > 0 for r in train)
    assert [float(r["train/tokens_seen"]) for r in train] == [4 * 8 * (s + 1) for s in range(6)]


def test_step_log_with_gradient_accumulation_counts_optimizer_steps(fit_tiny, tmp_path):
    csv_logger = ResumableCSVLogger(str(tmp_path))
    fit_tiny(
        3,
        callbacks=[StepLog()],
        loggers=[csv_logger],
        log_every_n_steps=1,
        accumulate_grad_batches=2,
    )
    train = [r for r in rows(tmp_path) if r.get("train/loss")]
    assert [int(r["step"]) for r in train] == [0, 1, 2]
    assert float(train[-1]["train/tokens_seen"]) == 3 * 2 * 4 * 8


def test_wandb_failing_warns_once_and_is_left_alone(warned):
    logger = GuardedWandbLogger(project="inattn", mode="disabled")
    calls = []

    def broken(*args):
        calls.append(args)
        raise OSError("folder went away")

    assert logger._guard("logging metrics", broken, 1) is None
    assert logger._guard("logging metrics", broken, 2) is None
    assert calls == [(1,)] and logger.failed
    (warning,) = warned
    assert "W&B failed while logging metrics (folder went away)" in warning


def config(logger: str, **wandb) -> LoggerConfig:
    wb = {"enabled": logger == "wandb", "project": "inattn", "entity": None, "init_timeout": 5}
    wb["mode"] = "offline" if logger == "wandb" else "disabled"
    return LoggerConfig(WandbConfig(**{**wb, **wandb}), group=None, tags=("dense", "mine"))


def test_tags_name_the_model_and_keep_the_users():
    tags = run_tags("dense", "nano", 64, "rope", ["mine"])
    assert tags == ("dense", "nano", "T64", "rope", "mine")
    assert run_tags("inattn", "tiny", 8, "alibi", None) == ("inattn", "tiny", "T8", "alibi")


@pytest.mark.parametrize("cfg", [config("csv"), config("wandb", mode="disabled")])
def test_without_wandb_only_the_csv_log(cfg, tmp_path):
    built = build_loggers(cfg, tmp_path, {})
    assert [type(x) for x in built] == [ResumableCSVLogger] and wandb_run_id(built) is None


def test_wandb_that_cannot_start_leaves_the_csv_log_and_one_warning(tmp_path, monkeypatch, warned):
    def no_start(self):
        raise RuntimeError("no network\nmore detail")

    monkeypatch.setattr(loggers.GuardedWandbLogger, "experiment", property(no_start))
    built = build_loggers(config("wandb"), tmp_path, {})
    assert [type(x) for x in built] == [ResumableCSVLogger]
    (warning,) = warned
    assert warning == "W&B could not start (no network); logging to CSV only"


class Recorder(GuardedWandbLogger):
    """A W&B logger that records what `finish_loggers` asks of its run instead of running one."""

    def __init__(self, failed: bool = False):
        super().__init__(project="inattn", mode="disabled")
        self.failed = failed
        self.summary: dict = {}
        self.exit_codes: list[int] = []

    @property
    def experiment(self):
        recorder = self

        class Run:
            summary = recorder.summary

            def finish(self, exit_code: int) -> None:
                recorder.exit_codes.append(exit_code)

        return Run()


@pytest.mark.parametrize("failed, code, status", [(False, 0, "success"), (True, 1, "failed")])
def test_finish_writes_the_summary_and_closes_every_logger(tmp_path, failed, code, status):
    wb, csv_logger = Recorder(), ResumableCSVLogger(str(tmp_path))
    closed = []
    csv_logger.finalize = closed.append  # type: ignore[method-assign]
    finish_loggers([wb, csv_logger], {"val_loss": 1.5}, failed=failed)
    assert wb.summary == {"val_loss": 1.5} and wb.exit_codes == [code]
    assert closed == [status]


def test_finish_leaves_a_failed_wandb_logger_alone(tmp_path):
    wb = Recorder(failed=True)
    finish_loggers([wb], {"val_loss": 1.0})
    assert wb.summary == {} and wb.exit_codes == []


def test_build_loggers_hands_wandb_its_settings(tmp_path, monkeypatch):
    started = {}

    def start(self):
        started.update(self._wandb_init)
        return None

    monkeypatch.setattr(loggers.GuardedWandbLogger, "experiment", property(start))
    cfg = dataclasses.replace(config("wandb"), group="g", tags=("dense", "nano"))
    built = build_loggers(cfg, tmp_path / "run-1", {"seed": 1}, run_id="abc", resume_step=4)
    assert [type(x) for x in built] == [GuardedWandbLogger, ResumableCSVLogger]
    assert started["group"] == "g" and started["tags"] == ["dense", "nano"]
    assert started["name"] == "run-1" and started["id"] == "abc" and started["resume"] == "allow"
    assert started["mode"] == "offline" and started["config"] == {"seed": 1}
    assert "anonymous" not in started
