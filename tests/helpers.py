"""Shared by the resume, fault, bad-input and DDP tests: a tiny corpus, tiny runs, CLI runners.

The corpus is small on purpose: 29 blocks of 17 tokens, so an epoch is 7 steps of batch 4 and a
run of a dozen steps crosses epoch boundaries, where data-position bugs live.
"""

from __future__ import annotations

import csv
import os
import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from inattn.config import CONF_DIR

# One thread everywhere: runs compared bit for bit must use the same thread count, and tiny
# models gain nothing from a second thread on a busy machine.
THREADS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
WORDS = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "far", "away", "from"]


def write_corpus(folder: Path, words: int = 250, seed: int = 0) -> list[str]:
    """Two training files and a validation file of random words; the `data=files` overrides."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, n in (("train_a.txt", words), ("train_b.txt", words), ("val.txt", words // 3)):
        path = folder / name
        if not path.exists():  # file times are part of the data cache key
            path.write_text(" ".join(rng.choice(WORDS) for _ in range(n)) + "\n")
        paths.append(path)
    return ["data=files", f"data.train_files=[{paths[0]},{paths[1]}]", f"data.val_files={paths[2]}"]


def tiny(root: Path, cache: Path, *extra: str) -> list[str]:
    """A nano model on the tiny corpus, deterministic, a checkpoint every step (all kept)."""
    return [
        *write_corpus(cache.parent / f"{cache.name}-corpus"),
        "size=nano",
        "context_length=16",
        "batch_size=4",
        "tokenizer.vocab_size=300",
        "model.dropout=0.1",  # so that a resume must restore the RNG too
        "trainer.max_steps=16",
        "trainer.val_check_interval=3",
        "trainer.limit_val_batches=2",
        "trainer.log_every_n_steps=1",
        "trainer.deterministic=true",
        "trainer.accelerator=cpu",
        "trainer.enable_progress_bar=false",
        "optim.warmup_steps=2",
        "checkpoint.every_n_steps=1",
        "checkpoint.keep=-1",
        "logger=csv",
        f"paths.root={root}",
        f"paths.cache={cache}",
        *extra,
    ]


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """torch on one thread in this process too (see THREADS), for a whole test module."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def compose_train(overrides: list[str]) -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=overrides)


def train_in_process(overrides: list[str], run_dir: Path) -> dict[str, Any]:
    from inattn.training.train import train

    return train(compose_train(overrides), run_dir)


def cli(*args: str, env: dict[str, str] | None = None, timeout: int = 300, **popen: Any):
    """`inattn-train ARGS` in a subprocess; `background=True` returns the Popen (give it
    stdout and stderr files: a full pipe would block the run)."""
    # Each command its own W&B service: an in-process W&B run (another test) leaves its
    # service's address in WANDB_SERVICE, which a child would otherwise share (and a SIGKILLed
    # child would leave that shared service holding its run).
    own = {k: v for k, v in os.environ.items() if k != "WANDB_SERVICE"}
    env = {**own, "WANDB_MODE": "offline", "WANDB_SILENT": "true", **THREADS, **(env or {})}
    cmd = [sys.executable, "-m", "inattn.cli.train", *args]
    if popen.pop("background", False):
        return subprocess.Popen(cmd, env=env, **popen)
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)


def cli_in_process(main: Callable[[], None], args: list[str], capsys, monkeypatch):
    """(exit code, stdout, stderr) of a Hydra CLI's `main` run in this process."""
    monkeypatch.setattr(
        sys, "argv", ["inattn", *args, "hydra/job_logging=none", "hydra/hydra_logging=none"]
    )
    capsys.readouterr()
    try:
        main()
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    finally:
        GlobalHydra.instance().clear()
        HydraConfig.instance().cfg = None
    out = capsys.readouterr()
    return code, out.out, out.err


def load_checkpoint(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=False)


def same_weights(a: Path, b: Path) -> bool:
    sa, sb = load_checkpoint(a)["state_dict"], load_checkpoint(b)["state_dict"]
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def csv_rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "csv" / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def measured(run_dir: Path, key: str) -> list[tuple[int, float]]:
    """(step, value) of every CSV row that has `key`."""
    return [(int(r["step"]), float(r[key])) for r in csv_rows(run_dir) if r.get(key)]
