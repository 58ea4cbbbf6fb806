"""inattn-reproduce end to end on the smoke preset (seconds of training per experiment), and
`inattn-report` rebuilding each experiment's report from its committed files alone."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from inattn.experiments import record
from tests.wandb_records import run_contents

REQUIRED = set(record.RUN_COLUMNS)
WORDS = r"\*\*(held|not held|inconclusive)\*\*"


def reproduce(*args: str, root: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    cmd = [sys.executable, "-m", "inattn.cli.reproduce", *args, f"paths.root={root}"]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)


def report_cli(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "inattn.cli.report", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def undated(text: str) -> str:
    return re.sub(r"report rendered: .*", "", text)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("reproduce")
    result = reproduce("experiment=all", "preset=smoke", root=root)
    assert result.returncode == 0, result.stderr[-3000:]
    return root / "experiments" / "smoke"


@pytest.mark.parametrize("experiment", ["vram", "equal_vram", "finetune"])
def test_each_experiment_leaves_raw_data_design_and_verdicts(smoke, experiment):
    out = smoke / experiment
    rows = record.read_rows(out / "runs.csv")
    assert rows and REQUIRED <= set(rows[0])
    assert all(r["experiment"] == experiment for r in rows)
    saved = record.read_design(out)
    assert saved["design"] and saved["provenance"]["revision"]
    report = (out / "report.md").read_text()
    assert re.search(WORDS, report), report[:2000]
    assert "git revision at the start" in report and "wall time" in report
    assert all(p.stat().st_size > 0 for p in out.glob("*.png")) and list(out.glob("*.png"))
    runs = [run_contents(r) for r in out.glob("wandb/offline-run-*")]  # one W&B summary run
    (summary,) = [r for r in runs if r["run"].run_group == experiment]
    assert any(k.endswith("/_type") and v == "table-file" for k, v in summary["history"][0].items())


def test_equal_vram_records_cost_and_both_sides_of_every_pair(smoke):
    rows = record.read_rows(smoke / "equal_vram" / "runs.csv")
    seeds = {r["seed"] for r in rows}
    assert seeds == {1, 2}
    for r in rows:
        assert r["tokens"] > 0 and r["flops"] > r["params"] * r["tokens"]
        assert r["eval_context"] == 256 and r["train_context"] == 32
        assert r["memory_bytes"] > 0 and r["val_loss"] > 0
    variants = {r["variant"] for r in rows}
    assert {"dense", "inattn"} <= variants
    report = (smoke / "equal_vram" / "report.md").read_text()
    assert "## Pre-registered design" in report and "Regime check" in report


def test_finetune_has_every_route_and_the_probe(smoke):
    rows = record.read_rows(smoke / "finetune" / "runs.csv")
    routes = {r["route"] for r in rows}
    assert routes == {"pretrained", "finetuned", "more-T0", "scratch-tokens", "scratch-steps"}
    by = {(r["route"], r["variant"], r["seed"]): r for r in rows}
    # the fine-tuned route's cost includes its pretraining; scratch-tokens matches it
    ft, pre = by[("finetuned", "inattn", 1)], by[("pretrained", "inattn", 1)]
    assert ft["tokens"] > pre["tokens"]
    assert abs(by[("scratch-tokens", "inattn", 1)]["tokens"] - ft["tokens"]) <= 96 * 4
    assert "copy_gain_40" in rows[0] and "deficit" in rows[0]


@pytest.mark.parametrize("experiment", ["vram", "equal_vram", "finetune"])
def test_report_rebuilds_from_the_committed_files_alone(smoke, tmp_path, experiment):
    keep = {"design.json", "runs.csv", "positions.csv"}
    copy = tmp_path / experiment
    copy.mkdir()
    for f in (smoke / experiment).iterdir():
        if f.name in keep:
            shutil.copy(f, copy / f.name)
    result = report_cli(str(copy))
    assert result.returncode == 0, result.stderr
    original = (smoke / experiment / "report.md").read_text()
    assert undated((copy / "report.md").read_text()) == undated(original)
    for png in (smoke / experiment).glob("*.png"):
        assert (copy / png.name).read_bytes() == png.read_bytes()


def test_plan_prints_without_training(tmp_path):
    result = reproduce("experiment=equal_vram", "preset=smoke", "dry_run=true", root=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (
        "Pre-registered design" in result.stdout and "Runs (each for every seed)" in result.stdout
    )
    assert not (tmp_path / "outputs" / "reproduce" / "smoke" / "equal_vram").exists()


def test_paper_plan_states_gpu_hours_from_flops(tmp_path):
    # a shorter deployment context than the preset's keeps the memory plan quick to measure
    result = reproduce(
        "experiment=equal_vram", "preset=paper", "dry_run=true", "context_length=2048",
        "preset.equal_vram.budgets=[gpt2-small]", "preset.equal_vram.variants=[inattn,dense]",
        "preset.equal_vram.ladder=[gpt2-small,gpt2-medium,gpt2-large]", root=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r"GPU-hours on one h100-sxm", result.stdout), result.stdout[-2000:]


@pytest.mark.parametrize(
    "args, field",
    [
        (["experiment=equal_vram", "preset=smoke", "budget=1KiB"], "budget"),
        (["experiment=equal_vram", "preset=smoke", "budget=lots"], "budget"),
        (["experiment=nonsense"], "experiment"),
        (["experiment=equal_vram", "preset=smoke", "seeds=[1]"], "seeds"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, field):
    result = reproduce(*args, root=tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and field in errors[0] and "Traceback" not in result.stderr


def test_uptrain_converts_dense_and_compares_with_scratch(tmp_path):
    result = reproduce("experiment=uptrain", "preset=smoke", root=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "experiments" / "smoke" / "uptrain"
    rows = record.read_rows(out / "runs.csv")
    routes = {r["route"] for r in rows}
    assert routes == {"source", "converted", "uptrain-0.2", "scratch-0.2", "uptrain-0.5",
                      "scratch-0.5"}  # fmt: skip
    by = {(r["route"], r["seed"]): r for r in rows}
    assert by[("converted", 1)]["arch"] == "inattn" and by[("source", 1)]["arch"] == "dense"
    # scratch gets the uptrained route's total tokens
    assert by[("scratch-0.5", 1)]["tokens"] == by[("uptrain-0.5", 1)]["tokens"]
    report = (out / "report.md").read_text()
    assert re.search(WORDS, report) and (out / "loss_vs_fraction.png").stat().st_size > 0
    result = report_cli(str(out))
    assert result.returncode == 0 and undated((out / "report.md").read_text()) == undated(report)
