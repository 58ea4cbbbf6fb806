"""Fixtures shared by the tests: Hydra-composed training configs, a tiny corpus, a trained tiny
run, and command-line runners that return (exit code, stdout, stderr).

The helpers behind them live in tests/helpers.py (plain functions, importable).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig

from tests.helpers import (
    THREADS,
    compose_train,
    one_thread,  # noqa: F401 (a fixture, for every module)
    tiny,
    train_in_process,
    write_corpus,
)


@pytest.fixture
def tiny_corpus(tmp_path) -> list[str]:
    """Two small training files and a validation file; the `data=files` overrides naming them."""
    return write_corpus(tmp_path / "corpus")


@pytest.fixture
def train_overrides(tmp_path) -> list[str]:
    """A nano model on a tiny corpus, CPU, CSV logger, everything under tmp_path."""
    return tiny(tmp_path, tmp_path / "cache", f"hydra.run.dir={tmp_path / 'run'}")


@pytest.fixture
def train_cfg(train_overrides) -> DictConfig:
    """The composed training config of `train_overrides` (as `inattn-train` would see it)."""
    return compose_train([o for o in train_overrides if not o.startswith("hydra.")])


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """The folder of a finished 2-step tiny run: metrics.json, checkpoints/last.ckpt, csv/."""
    root = tmp_path_factory.mktemp("trained")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        overrides = tiny(root, root / "cache", "trainer.max_steps=2", "checkpoint.keep=0")
        train_in_process(overrides, root / "run")
    finally:
        torch.set_num_threads(before)
    return root / "run"


TINY_MODEL = {"n_layer": 2, "n_head": 2, "d_model": 16, "vocab_size": 50, "context_length": 8}
TINY_OPTIM = {
    "lr": 1e-2,
    "weight_decay": 0.1,
    "betas": [0.9, 0.95],
    "eps": 1e-8,
    "warmup_steps": 2,
    "min_lr_ratio": 0.1,
}


@pytest.fixture
def fit_tiny(tmp_path, request) -> Callable[..., tuple]:
    """`fit_tiny(steps, callbacks=[], loggers=False, batch=4, validate=False, **trainer)`: a
    2-layer LitGPT trained in this process on random token blocks (CPU, no progress bar, no
    Lightning checkpoints); returns (trainer, module)."""
    request.getfixturevalue("one_thread")
    import lightning as L
    from torch.utils.data import DataLoader, TensorDataset

    from inattn.training.lit import LitGPT

    def fit(
        steps: int, callbacks=(), loggers=False, batch: int = 4, validate: bool = False, **trainer
    ) -> tuple:
        gen = torch.Generator().manual_seed(0)
        T, V = TINY_MODEL["context_length"], TINY_MODEL["vocab_size"]
        blocks = torch.randint(0, V, (32, T + 1), generator=gen)
        data = DataLoader(TensorDataset(blocks[:, :-1], blocks[:, 1:]), batch_size=batch)
        lit = LitGPT(dict(TINY_MODEL), dict(TINY_OPTIM), max_steps=steps)
        settings = {
            "accelerator": "cpu",
            "max_steps": steps,
            "logger": loggers,
            "callbacks": list(callbacks),
            "enable_checkpointing": False,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "num_sanity_val_steps": 0,
            "limit_val_batches": 2 if validate else 0,
            "default_root_dir": tmp_path,
            **trainer,
        }
        run = L.Trainer(**settings)
        run.fit(lit, train_dataloaders=data, val_dataloaders=data if validate else None)
        return run, lit

    return fit


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@pytest.fixture
def run_cli(tmp_path) -> Callable[..., Result]:
    """`run_cli("train", *args)`: inattn-<program> ARGS in a subprocess (run in tmp_path, W&B
    offline, one thread); returns a `Result`."""

    def run(program: str, *args: str, timeout: int = 300, **env: str) -> Result:
        own = {k: v for k, v in os.environ.items() if k != "WANDB_SERVICE"}
        full_env = {**own, "WANDB_MODE": "offline", "WANDB_SILENT": "true", **THREADS, **env}
        root = Path(__file__).resolve().parent.parent  # the checkout, importable from tmp_path
        full_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(root), os.environ.get("PYTHONPATH")) if p
        )
        cmd = [sys.executable, "-m", f"inattn.cli.{program}", *args]
        done = subprocess.run(
            cmd, cwd=tmp_path, env=full_env, capture_output=True, text=True, timeout=timeout
        )
        return Result(done.returncode, done.stdout, done.stderr)

    return run
