"""inattn-train end to end, with tiny models and a few steps (one subprocess per command).

Bad input is in test_bad_input.py, resuming in checkpoints/test_resume.py, faults in test_faults.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.wandb_records import run_contents

TINY = [
    "size=nano",
    "context_length=32",
    "batch_size=4",
    "tokenizer.vocab_size=512",
    "trainer.max_steps=4",
    "trainer.val_check_interval=2",
    "trainer.limit_val_batches=2",
    "trainer.log_every_n_steps=1",
    "optim.warmup_steps=2",
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """One tokenized-data cache for the module, so the tokenizer is trained once."""
    return tmp_path_factory.mktemp("cache")


def metrics_files(root: Path) -> list[Path]:
    return sorted(root.glob("outputs/**/metrics.json"))


def test_default_run_writes_metrics_checkpoint_and_wandb(tmp_path, cache, run_cli):
    result = run_cli("train", *TINY, "group=smoke", f"paths.cache={cache}")
    assert result.code == 0, result.stderr[-3000:]
    (metrics_path,) = metrics_files(tmp_path)
    run_dir = metrics_path.parent
    m = json.loads(metrics_path.read_text())
    assert m["arch"] == "inattn" and m["size"] == "nano" and m["context_length"] == 32
    assert m["tokens_seen"] == 4 * 4 * 32 and m["steps"] == 4
    for key in ("val_loss", "params", "tokens_per_sec", "wall_seconds", "seed", "git_revision"):
        assert key in m
    assert "final val loss" in result.stdout and str(run_dir) in result.stdout
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert (run_dir / "csv" / "metrics.csv").is_file()

    (wandb_run,) = run_dir.glob("wandb/offline-run-*")
    logged = run_contents(wandb_run)
    losses = [h["train/loss"] for h in logged["history"] if "train/loss" in h]
    assert len(losses) == 4
    assert any("val/loss" in h for h in logged["history"])
    assert logged["config"]["model"]["arch"] == "inattn"
    assert logged["config"]["optim"]["lr"] == pytest.approx(1e-3)
    assert logged["summary"]["val_loss"] == pytest.approx(m["val_loss"])
    assert logged["run"].run_group == "smoke"
    assert {"inattn", "nano", "T32"} <= set(logged["run"].tags)


def test_multirun_grid_writes_one_metrics_file_per_job(tmp_path, cache, run_cli):
    args = ["arch=dense,inattn", "position=learned,rope", "logger=csv", f"paths.cache={cache}"]
    result = run_cli("train", "-m", *TINY, *args)
    assert result.code == 0, result.stderr[-3000:]
    runs = [json.loads(p.read_text()) for p in metrics_files(tmp_path)]
    assert sorted((r["arch"], r["position"]) for r in runs) == [
        ("dense", "learned"),
        ("dense", "rope"),
        ("inattn", "learned"),
        ("inattn", "rope"),
    ]
    assert not list(tmp_path.glob("outputs/**/wandb"))  # logger=csv: no W&B at all
