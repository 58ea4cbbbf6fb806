"""inattn-reproduce end to end on the smoke preset (seconds of training per experiment)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.wandb_records import run_contents


def reproduce(*args: str, root: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    cmd = [sys.executable, "-m", "inattn.cli.reproduce", *args, f"paths.root={root}"]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)


def test_all_experiments_smoke_write_their_reports(tmp_path):
    result = reproduce("experiment=all", "preset=smoke", "budget=64MiB", root=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    reports = tmp_path / "experiments" / "smoke"

    vram = (reports / "vram" / "report.md").read_text()
    assert "inattn/state" in vram and "dense/naive" in vram and "## Verdict" in vram
    assert (reports / "vram" / "results.csv").is_file()
    assert (reports / "vram" / "memory_vs_context.png").stat().st_size > 0

    out = reports / "equal_vram"
    report = (out / "report.md").read_text()
    for heading in ("## Chosen models", "## Verdict", "## Full grid", "git revision"):
        assert heading in report
    assert report.count("| inattn |") == 2 and report.count("| dense |") == 2
    assert (out / "loss_vs_params.png").stat().st_size > 0
    assert (out / "loss_vs_memory.png").stat().st_size > 0
    metrics = list((tmp_path / "outputs").glob("reproduce/smoke/equal_vram/*/metrics.json"))
    assert len(metrics) == 8  # 2 sizes x 2 archs x 2 seeds

    finetune = (reports / "finetune" / "report.md").read_text()
    for route in ("pretrained", "finetuned", "scratch"):
        assert finetune.count(f"| {route} |") == 2  # one row per arch
    assert (reports / "finetune" / "loss_vs_position.png").stat().st_size > 0
    assert (reports / "finetune" / "passkey_inattn_finetuned.png").stat().st_size > 0

    for experiment in ("vram", "equal_vram", "finetune"):  # one W&B summary run each
        runs = [run_contents(r) for r in (reports / experiment).glob("wandb/offline-run-*")]
        (summary,) = [r for r in runs if r["run"].run_group == experiment]
        logged = summary["history"][0]
        assert any(k.endswith("/_type") and logged[k] == "table-file" for k in logged)
        assert any(k.endswith("/_type") and logged[k] == "image-file" for k in logged)


def test_plan_prints_without_training(tmp_path):
    result = reproduce(
        "experiment=equal_vram", "preset=smoke", "dry_run=true", "budget=64MiB", root=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Chosen (largest that fits)" in result.stdout
    assert not (tmp_path / "outputs" / "reproduce" / "smoke" / "equal_vram").exists()


@pytest.mark.parametrize(
    "args, field",
    [
        (["experiment=equal_vram", "preset=smoke", "budget=1KiB"], "budget"),
        (["experiment=equal_vram", "preset=smoke", "budget=lots"], "budget"),
        (["experiment=nonsense"], "experiment"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, field):
    result = reproduce(*args, root=tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and field in errors[0] and "Traceback" not in result.stderr
