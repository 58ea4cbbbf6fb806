"""Exact resume: a run killed at a random step and resumed ends bitwise equal to one never stopped.

CPU, `trainer.deterministic=true`, no loader workers, dropout 0.1 (so the RNG must be restored),
and a corpus whose epochs are 7 steps long (so resumes cross and land on epoch boundaries).
"""

from __future__ import annotations

import json
import random
import signal
import time
from pathlib import Path

import pytest

from inattn.checkpoints.io import CheckpointError
from inattn.checkpoints.resume import check_global_batch, check_resume
from inattn.data.module import TextDataModule
from inattn.model import GPTConfig
from tests.helpers import (
    cli,
    cli_in_process,
    load_checkpoint,
    measured,
    same_weights,
    tiny,
    train_in_process,
)
from tests.wandb_records import run_contents

STEPS = 16
KILL_SEED = 7  # draws the step at which the run is killed
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("resume") / "cache"


@pytest.fixture(scope="module")
def whole(tmp_path_factory, cache, request) -> Path:
    """An uninterrupted run, in this process: every step's checkpoint kept."""
    request.getfixturevalue("one_thread")  # before this fixture's run, not only the tests'
    run_dir = tmp_path_factory.mktemp("whole") / "run"
    train_in_process(tiny(run_dir.parent, cache, f"trainer.max_steps={STEPS}"), run_dir)
    return run_dir


def step_file(run_dir: Path, step: int) -> Path:
    return run_dir / "checkpoints" / f"step-{step:07d}.ckpt"


def test_sigkill_at_a_random_step_then_resume_auto_is_exact(tmp_path, cache, whole):
    # A step drawn from a seeded stream: the same one on every run (reported in every assertion)
    k = random.Random(KILL_SEED).randint(2, STEPS // 2)
    run_dir = tmp_path / "killed"
    args = [*tiny(tmp_path, cache, f"trainer.max_steps={STEPS}"), "logger=wandb"]
    args.append(f"hydra.run.dir={run_dir}")
    with open(tmp_path / "out.txt", "w") as out:
        proc = cli(*args, background=True, stdout=out, stderr=out)
        deadline = time.monotonic() + 240
        while not step_file(run_dir, k).exists():
            assert proc.poll() is None, f"the run ended before step {k}"
            assert time.monotonic() < deadline, f"no checkpoint for step {k} in time"
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    killed_at = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["global_step"]
    assert k <= killed_at < STEPS, (k, killed_at)
    assert not (run_dir / "metrics.json").exists()

    resumed = cli(*args, "resume=auto")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    got = json.loads((run_dir / "metrics.json").read_text())
    want = json.loads((whole / "metrics.json").read_text())
    assert got["resumed_from_step"] == killed_at, (k, killed_at)
    assert got["val_loss"] == want["val_loss"], (k, killed_at)
    assert got["tokens_seen"] == want["tokens_seen"] and got["steps"] == STEPS
    assert same_weights(run_dir / "checkpoints" / "last.ckpt", whole / "checkpoints" / "last.ckpt")
    # Nothing measured is lost or logged twice: the CSV log equals the uninterrupted run's.
    for key in ("train/loss", "val/loss", "lr"):
        assert measured(run_dir, key) == measured(whole, key), (key, k, killed_at)
    # The W&B run continues under the same id, from where the checkpoint was.
    first, second = sorted(run_dir.glob("wandb/offline-run-*"))
    assert first.name.rsplit("-", 1)[1] == second.name.rsplit("-", 1)[1]
    assert list(second.glob("*.wandb")), (resumed.stdout[-3000:], sorted(second.rglob("*")))
    logged = [h for h in run_contents(second)["history"] if "train/loss" in h]
    assert len(logged) == STEPS - killed_at


def test_resume_from_any_step_is_exact(tmp_path, cache, whole):
    """Steps on and beside epoch ends (7, 14) and validations (every 3rd step)."""
    want = json.loads((whole / "metrics.json").read_text())
    for k in (3, 7, 8, 14):
        run_dir = tmp_path / f"from{k}"
        overrides = tiny(tmp_path, cache, f"trainer.max_steps={STEPS}")
        got = train_in_process([*overrides, f"resume={step_file(whole, k)}"], run_dir)
        assert got["val_loss"] == want["val_loss"], k
        assert same_weights(run_dir / "checkpoints" / "last.ckpt", step_file(whole, STEPS)), k


@pytest.mark.parametrize("skip", ["rng", "data position"])
def test_resume_without_rng_or_data_position_differs(tmp_path, cache, whole, monkeypatch, skip):
    """The check above can fail: leave out either restore and the weights come out different."""
    if skip == "rng":
        monkeypatch.setattr("inattn.checkpoints.resume._set_rng_states", lambda state: None)
    else:
        monkeypatch.setattr(TextDataModule, "resume_at", lambda self, batches: None)
    run_dir = tmp_path / "run"
    overrides = tiny(tmp_path, cache, f"trainer.max_steps={STEPS}", f"resume={step_file(whole, 8)}")
    train_in_process(overrides, run_dir)
    assert not same_weights(run_dir / "checkpoints" / "last.ckpt", step_file(whole, STEPS))


def test_rerun_sweep_skips_finished_jobs_and_resumes_the_rest(tmp_path, cache, capsys, monkeypatch):
    from inattn.cli.train import main

    sweep = tmp_path / "sweep"
    args = ["-m", *tiny(tmp_path, cache, "trainer.max_steps=4", "checkpoint.keep=0"), "seed=1,2"]
    args += [f"hydra.sweep.dir={sweep}", "resume=auto"]
    code, _, err = cli_in_process(main, args, capsys, monkeypatch)
    assert code == 0, err[-3000:]
    done, redo = sorted(sweep.glob("*/metrics.json"))
    stamp, old = done.stat().st_mtime_ns, json.loads(redo.read_text())
    redo.unlink()

    code, out, err = cli_in_process(main, args, capsys, monkeypatch)
    assert code == 0, err[-3000:]
    assert out.count("already finished") == 1 and str(done) in out
    assert done.stat().st_mtime_ns == stamp
    new = json.loads(redo.read_text())
    assert new["resumed_from_step"] == 4 and new["val_loss"] == old["val_loss"]


def test_resume_of_a_run_started_from_a_shorter_context_is_exact(tmp_path, cache):
    """init_from + RoPE interpolation: the resumed model keeps the derived RoPE scale."""
    short = tmp_path / "short"
    train_in_process(
        tiny(tmp_path, cache, "position=rope", "context_length=8", "trainer.max_steps=3"), short
    )
    longer = tiny(
        tmp_path,
        cache,
        "position=rope",
        "trainer.max_steps=8",
        f"init_from={short / 'checkpoints' / 'last.ckpt'}",
        "init_extension=rope_scale",
    )
    whole_dir, resumed_dir = tmp_path / "whole", tmp_path / "resumed"
    want = train_in_process(longer, whole_dir)
    assert load_checkpoint(step_file(whole_dir, 4))["hyper_parameters"]["model"]["rope_scale"] == 2
    got = train_in_process([*longer, f"resume={step_file(whole_dir, 4)}"], resumed_dir)
    assert got["val_loss"] == want["val_loss"]
    assert same_weights(resumed_dir / "checkpoints" / "last.ckpt", step_file(whole_dir, 8))


# ----------------------------------------------------------------------------- the checks alone

MODEL = GPTConfig(vocab_size=300, context_length=16, n_layer=2, n_head=2, d_model=16).to_dict()
FACTS = {"seed": 0, "train_tokens": 1000, "train_blocks": 29}


@pytest.mark.parametrize(
    "model, run, max_steps, field",
    [
        ({**MODEL, "arch": "dense"}, FACTS, 10, "arch"),
        ({**MODEL, "n_layer": 3}, FACTS, 10, "model.n_layer"),
        ({**MODEL, "vocab_size": 200}, FACTS, 10, "tokenizer.vocab_size"),
        ({**MODEL, "context_length": 32}, FACTS, 10, "context_length"),
        (MODEL, {**FACTS, "seed": 1}, 10, "seed"),
        (MODEL, {**FACTS, "train_tokens": 999}, 10, "data"),
        (MODEL, FACTS, 4, "trainer.max_steps"),
    ],
)
def test_a_checkpoint_this_run_cannot_continue_is_refused_naming_the_field(
    model, run, max_steps, field, tmp_path
):
    ckpt = {"hyper_parameters": {"model": MODEL}, "run": FACTS, "global_step": 5}
    check_resume(ckpt, tmp_path / "last.ckpt", MODEL, FACTS, 10)  # the same run: nothing
    with pytest.raises(CheckpointError) as err:
        check_resume(ckpt, tmp_path / "last.ckpt", model, run, max_steps)
    assert err.value.field == field and str(tmp_path / "last.ckpt") in err.value.message


def test_a_resume_keeps_the_global_batch():
    saved = {"batch_size": 4, "world_size": 2, "accumulate_grad_batches": 1}
    check_global_batch(saved, 8, 1, 1)  # 2 x 4 = 1 x 8: the same data position
    with pytest.raises(CheckpointError) as err:
        check_global_batch(saved, 4, 1, 1)
    assert err.value.field == "batch_size"
