"""Scale-out: DDP on this CPU (2 processes, gloo) against one process at the same global batch,
DDP resume, and the FSDP and SLURM configs.

Two processes of batch 2 take, step for step, the same 4 samples as one process of batch 4, so
the runs differ only by float rounding (the order of the gradient all-reduce): every step's
training loss and the final validation loss agree to TOLERANCE (relative). Dropout is 0: each
process draws its own masks, so dropout would make the runs differ by design.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.strategies import FSDPStrategy

from inattn.config import CONF_DIR
from inattn.model import Block
from inattn.training.config import RunConfig
from inattn.training.trainer import trainer_kwargs
from tests.helpers import (
    cli,
    measured,
    same_weights,
    tiny,
    train_in_process,
)

TOLERANCE = 1e-4
STEPS = 10
RESUME_AT = 5  # mid-epoch: the data position is 5 steps x 2 processes x batch 2 samples in
pytestmark = pytest.mark.usefixtures("one_thread")


def overrides(root: Path, cache: Path, *extra: str) -> list[str]:
    return tiny(
        root,
        cache,
        f"trainer.max_steps={STEPS}",
        "model.dropout=0.0",
        "trainer.limit_val_batches=1.0",  # the whole split: the same samples at any batch size
        *extra,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory, request) -> dict[str, Path]:
    """One process of batch 4 (in this process) and two of batch 2 (DDP, a subprocess)."""
    request.getfixturevalue("one_thread")
    root = tmp_path_factory.mktemp("ddp")
    cache = root / "cache"
    single, ddp = root / "single", root / "ddp"
    train_in_process(overrides(root, cache, "batch_size=4"), single)
    result = cli(*overrides(root, cache, "trainer=ddp", "batch_size=2"), f"hydra.run.dir={ddp}")
    assert result.returncode == 0, result.stderr[-3000:]
    return {"root": root, "cache": cache, "single": single, "ddp": ddp}


def close(a: float, b: float) -> bool:
    return abs(a - b) <= TOLERANCE * abs(b)


def test_ddp_matches_one_process_at_the_same_global_batch(runs):
    one, two = (json.loads((runs[k] / "metrics.json").read_text()) for k in ("single", "ddp"))
    assert two["world_size"] == 2 and one["world_size"] == 1
    assert two["tokens_seen"] == one["tokens_seen"] == STEPS * 4 * 16
    curve_one, curve_two = (
        measured(runs["single"], "train/loss"),
        measured(runs["ddp"], "train/loss"),
    )
    assert [s for s, _ in curve_two] == [s for s, _ in curve_one] == list(range(STEPS))
    assert all(close(b, a) for (_, a), (_, b) in zip(curve_one, curve_two, strict=True))
    assert close(two["val_loss"], one["val_loss"])


def test_ddp_resumes_exactly(runs, tmp_path):
    step_file = runs["ddp"] / "checkpoints" / f"step-{RESUME_AT:07d}.ckpt"
    run_dir = tmp_path / "resumed"
    result = cli(
        *overrides(runs["root"], runs["cache"], "trainer=ddp", "batch_size=2"),
        f"resume={step_file}",
        f"hydra.run.dir={run_dir}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    got = json.loads((run_dir / "metrics.json").read_text())
    want = json.loads((runs["ddp"] / "metrics.json").read_text())
    assert got["resumed_from_step"] == RESUME_AT and got["val_loss"] == want["val_loss"]
    assert same_weights(
        run_dir / "checkpoints" / "last.ckpt", runs["ddp"] / "checkpoints" / "last.ckpt"
    )


def test_a_ddp_checkpoint_resumes_in_one_process_at_the_same_global_batch(runs, tmp_path):
    """The data position carries over between process counts (it counts global batches)."""
    step_file = runs["ddp"] / "checkpoints" / f"step-{RESUME_AT:07d}.ckpt"
    got = train_in_process(
        [*overrides(runs["root"], runs["cache"], "batch_size=4"), f"resume={step_file}"],
        tmp_path / "resumed",
    )
    want = json.loads((runs["ddp"] / "metrics.json").read_text())
    assert close(got["val_loss"], want["val_loss"])
    resumed = measured(tmp_path / "resumed", "train/loss")
    reference = dict(measured(runs["ddp"], "train/loss"))
    assert [s for s, _ in resumed] == list(range(RESUME_AT, STEPS))
    assert all(close(v, reference[s]) for s, v in resumed)


def test_a_changed_global_batch_is_refused(runs, tmp_path):
    from inattn.checkpoints.io import CheckpointError

    step_file = runs["ddp"] / "checkpoints" / f"step-{RESUME_AT:07d}.ckpt"
    with pytest.raises(CheckpointError, match="batch_size x processes") as err:
        train_in_process(
            [*overrides(runs["root"], runs["cache"], "batch_size=2"), f"resume={step_file}"],
            tmp_path / "resumed",
        )
    assert err.value.field == "batch_size"


def compose_with_hydra(overrides: list[str]):
    """The train config with Hydra's own node set, as inside a job (`${hydra:...}` resolves)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    return cfg


@pytest.mark.parametrize(
    "options, want",
    [
        (["trainer=ddp"], {"strategy": "ddp", "devices": 2, "num_nodes": 1}),
        (
            ["trainer=ddp", "trainer.num_nodes=2", "trainer.devices=8"],
            {"num_nodes": 2, "devices": 8},
        ),
        (["trainer=fsdp", "size=gpt2-xl"], {"accelerator": "gpu", "precision": "bf16-mixed"}),
        (
            ["local=slurm.example", "trainer=fsdp", "hydra.launcher.nodes=2"],
            {"num_nodes": 2, "devices": 4, "accelerator": "gpu"},
        ),
    ],
)
def test_scale_out_configs_compose(options, want):
    try:
        cfg = compose_with_hydra(options)
        kwargs = trainer_kwargs(RunConfig.from_cfg(cfg))
    finally:
        HydraConfig.instance().cfg = None
        GlobalHydra.instance().clear()
    assert {k: kwargs[k] for k in want} == want
    assert kwargs["use_distributed_sampler"] is False  # the sampler shards itself
    if cfg.trainer.strategy == "fsdp":
        strategy = kwargs["strategy"]
        assert isinstance(strategy, FSDPStrategy)
        assert strategy.kwargs["auto_wrap_policy"]._module_classes == {Block}
    if "local=slurm.example" in options:
        assert cfg.hydra.launcher._target_.endswith("submitit_launcher.SlurmLauncher")
        assert cfg.hydra.launcher.tasks_per_node == cfg.hydra.launcher.gpus_per_node == 4
