import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from inattn.cli.report import main
from inattn.errors import ConfigError, DataError
from inattn.reporting.markdown import table as markdown_table
from inattn.reporting.runs_summary import (
    Series,
    collect_runs,
    metric_vs_params,
    plot_xy,
    scan_runs,
    summarise,
    wandb_runs,
)

ROOT = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"

# (arch, size, params, context, seed, val_loss)
RUNS = [
    ("dense", "tiny", 1000, 64, 0, 3.0),
    ("dense", "tiny", 1000, 64, 1, 3.2),
    ("dense", "tiny", 1000, 64, 2, 3.4),
    ("dense", "tiny", 1000, 128, 0, 2.9),
    ("dense", "small", 5000, 64, 0, 2.5),
    ("dense", "small", 5000, 64, 1, 2.7),
    ("inattn", "tiny", 1000, 64, 0, 3.1),
    ("inattn", "small", 5000, 64, 0, 2.4),
    ("inattn", "small", 5000, 64, 1, 2.6),
    ("inattn", "small", 5000, 64, 2, 2.8),
]


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    root = tmp_path / "multirun"
    for i, (arch, size, params, T, seed, loss) in enumerate(RUNS):
        run = root / ("day1" if i % 2 else "day2") / f"{i}_{arch}_{size}_T{T}_seed{seed}"
        (run / ".hydra").mkdir(parents=True)
        metrics = {
            "arch": arch,
            "size": size,
            "params": params,
            "context_length": T,
            "seed": seed,
            "val_loss": loss,
            "tokens_seen": 100 * (i + 1),
        }
        (run / "metrics.json").write_text(json.dumps(metrics))
    unfinished = root / "day2" / "10_dense_tiny_T64_seed3"
    (unfinished / ".hydra").mkdir(parents=True)
    (unfinished / "checkpoints").mkdir()
    corrupt = root / "day2" / "11_inattn_tiny_T64_seed1"
    corrupt.mkdir()
    (corrupt / "metrics.json").write_text('{"val_loss": 3.')
    return root


# rows by (arch, size, context_length), computed by hand: sizes ordered by parameters
EXPECTED = [
    # arch, size, T, params, n, mean, std
    ("dense", "tiny", 64, 1000, 3, 3.2, 0.2),  # deviations -.2, 0, .2 -> sqrt(.08 / 2)
    ("dense", "tiny", 128, 1000, 1, 2.9, 0.0),
    ("dense", "small", 64, 5000, 2, 2.6, math.sqrt(0.02)),  # deviations -.1, .1 -> sqrt(.02 / 1)
    ("inattn", "tiny", 64, 1000, 1, 3.1, 0.0),
    ("inattn", "small", 64, 5000, 3, 2.6, 0.2),
]


def test_scan_finds_finished_runs_and_notes_the_rest(runs_dir):
    runs, skipped = scan_runs(runs_dir)
    assert len(runs) == len(RUNS)
    assert sorted(r["val_loss"] for r in runs) == sorted(r[-1] for r in RUNS)
    assert all(Path(r["metrics_file"]).is_file() for r in runs)
    reasons = {Path(s.path).name: s.reason for s in skipped}
    assert set(reasons) == {"10_dense_tiny_T64_seed3", "11_inattn_tiny_T64_seed1"}
    assert "unfinished" in reasons["10_dense_tiny_T64_seed3"]
    assert "unreadable" in reasons["11_inattn_tiny_T64_seed1"]
    assert collect_runs(runs_dir) == runs


def test_missing_folder_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="nowhere"):
        scan_runs(tmp_path / "nowhere")


def test_summary_matches_hand_computed_means_and_stds(runs_dir):
    rows = summarise(collect_runs(runs_dir))
    got = [
        (r["arch"], r["size"], r["context_length"], r["params"], r["n"], r["mean"], r["std"])
        for r in rows
    ]
    assert [g[:5] for g in got] == [e[:5] for e in EXPECTED]
    for g, e in zip(got, EXPECTED, strict=True):
        assert g[5] == pytest.approx(e[5], abs=1e-12)
        assert g[6] == pytest.approx(e[6], abs=1e-12)


def test_summary_by_arch_only_and_by_another_metric(runs_dir):
    runs = collect_runs(runs_dir)
    rows = summarise(runs, by=["arch"], metric="val_loss")
    assert [(r["arch"], r["n"]) for r in rows] == [("dense", 6), ("inattn", 4)]
    assert rows[1]["mean"] == pytest.approx((3.1 + 2.4 + 2.6 + 2.8) / 4)
    assert rows[1]["params"] == 4000  # mean of 1000, 5000, 5000, 5000
    tokens = summarise(runs, by=("arch", "size"), metric="tokens_seen")
    assert tokens[0]["mean"] == pytest.approx((100 + 200 + 300 + 400) / 4)


def test_summary_rejects_unknown_fields(runs_dir):
    runs = collect_runs(runs_dir)
    with pytest.raises(ConfigError, match="metric"):
        summarise(runs, metric="accuracy")
    with pytest.raises(ConfigError, match="by"):
        summarise(runs, by=("arch", "colour"))


def test_markdown_table_formats_cells():
    rows = [{"arch": "dense", "params": 1234567, "mean": 3.14159, "std": 0.0, "note": None}]
    text = markdown_table(rows, ["arch", "params", "mean", "std", "note"], {"mean": "loss"})
    assert text == (
        "| arch | params | loss | std | note |\n"
        "|---|---|---|---|---|\n"
        "| dense | 1,234,567 | 3.1416 | 0.0000 |  |\n"
    )


def test_loss_vs_params_series_one_line_per_arch(runs_dir, tmp_path):
    rows = summarise(collect_runs(runs_dir), by=("arch", "size"))
    series = metric_vs_params(rows, ("arch", "size"))
    assert list(series) == ["dense", "inattn"]
    assert series["inattn"].x == [1000, 5000]
    assert series["inattn"].y == pytest.approx([3.1, 2.6])
    assert series["inattn"].err == pytest.approx([0.0, 0.2])
    with_t = metric_vs_params(summarise(collect_runs(runs_dir)), ("arch", "size", "context_length"))
    assert set(with_t) == {
        "dense, context_length=64",
        "dense, context_length=128",
        "inattn, context_length=64",
    }
    short = [r for r in collect_runs(runs_dir) if r["context_length"] == 64]
    one_t = metric_vs_params(summarise(short), ("arch", "size", "context_length"))
    assert list(one_t) == ["dense", "inattn"]  # a key that does not vary names no line
    path = plot_xy(series, tmp_path / "p" / "loss.png", "parameters", "loss", logx=True)
    assert path.read_bytes()[:8] == PNG
    path = plot_xy({"a": Series([1, 2], [3, 4])}, tmp_path / "xy.png", "x", "y")
    assert path.read_bytes()[:8] == PNG


def test_wandb_runs_keep_finished_summaries():
    class FakeApi:
        def runs(self, path, filters):
            assert (path, filters) == ("team/inattn", {"group": "g"})
            return [
                SimpleNamespace(state="finished", url="u1", summary_metrics={"val_loss": 2.0}),
                SimpleNamespace(state="running", url="u2", summary_metrics={}),
            ]

    runs, skipped = wandb_runs("inattn", "g", entity="team", api=FakeApi())
    assert runs == [{"val_loss": 2.0, "wandb_url": "u1"}]
    assert [(s.path, s.reason) for s in skipped] == [("u2", "W&B run is running")]


def one_line_exit_2(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    return err


def test_cli_errors_are_one_line(runs_dir, tmp_path, capsys, monkeypatch):
    assert "nowhere" in one_line_exit_2(capsys, [str(tmp_path / "nowhere")])
    (tmp_path / "empty").mkdir()
    assert "no finished runs" in one_line_exit_2(capsys, [str(tmp_path / "empty")])
    assert "metric" in one_line_exit_2(capsys, [str(runs_dir), "--metric", "nope"])
    assert "by" in one_line_exit_2(capsys, [str(runs_dir), "--by", ","])
    assert "folder" in one_line_exit_2(capsys, [])
    assert "unrecognized" in one_line_exit_2(capsys, [str(runs_dir), "--colour"])
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert "wandb-group" in one_line_exit_2(capsys, ["--wandb-group", "g"])
    # online but without an API key: W&B refuses at once, still one line
    monkeypatch.delenv("WANDB_MODE")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    assert "wandb-group" in one_line_exit_2(capsys, ["--wandb-group", "g"])


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "inattn.cli.report", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)


def test_cli_writes_report_and_plot(runs_dir, tmp_path):
    out = tmp_path / "report"
    result = run_cli(str(runs_dir), "--out", str(out))
    assert result.returncode == 0, result.stderr
    report = (out / "report.md").read_text()
    assert "| dense | tiny | 64 | 1,000 | 3 | 3.2000 | 0.2000 |" in report
    assert "| dense | small | 64 | 5,000 | 2 | 2.6000 | 0.1414 |" in report
    assert "| inattn | tiny | 64 | 1,000 | 1 | 3.1000 | 0.0000 |" in report
    assert "10_dense_tiny_T64_seed3" in report and "11_inattn_tiny_T64_seed1" in report
    assert "![val_loss vs parameters](val_loss_vs_params.png)" in report
    assert (out / "val_loss_vs_params.png").read_bytes()[:8] == PNG
    assert "| arch | size | context_length | params | runs | val_loss mean | val_loss std |" in (
        result.stdout
    )


def test_cli_bad_folder_and_help():
    result = run_cli("/no/such/runs")
    assert result.returncode == 2
    assert result.stderr == "error: folder: no such folder: /no/such/runs\n"
    result = run_cli("--help")
    assert result.returncode == 0
    assert "--wandb-group" in result.stdout and "metrics.json" in result.stdout
