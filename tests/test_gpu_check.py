"""benchmarks/gpu_check.py: the agreement verdicts on synthetic rows, a quick CPU run, bad input."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from inattn.bench import BenchResult, Row
from inattn.inference import modes_for
from inattn.units import MiB
from tests.benchmark_scripts import BENCHMARKS, benchmark_script

SCRIPT = BENCHMARKS / "gpu_check.py"


@pytest.fixture(scope="module")
def gc_mod():
    with benchmark_script("gpu_check") as module:
        yield module


def mem_row(key: str, T: int, peak: int, cuda: int | None, device: str = "cuda", **kw) -> Row:
    arch, mode = key.split("/")
    return Row(
        "s",
        key,
        arch,
        mode,
        T,
        device,
        "bf16",
        "learned",
        1,
        weight_bytes=100 * MiB,
        peak_bytes=peak,
        cuda_peak_bytes=cuda,
        **kw,
    )


# ----------------------------------------------------------------------------- agreement


def test_agreement_within_tolerance_passes(gc_mod):
    cuda = 500 * MiB
    rows = [
        mem_row("dense/sdpa", 1024, int(cuda * 1.04), cuda),
        mem_row("inattn/state", 1024, int(cuda * 0.96), cuda),
        mem_row("dense/naive", 4096, cuda, cuda),
    ]
    lines, passed = gc_mod.agreement(rows)
    assert passed
    body = lines[2:5]
    assert all(line.rstrip().endswith("PASS") for line in body)
    assert "1.0400" in body[0] and "0.9600" in body[1]
    assert "3/3 compared points within 5%" in lines[-1]


@pytest.mark.parametrize("factor", [1.06, 0.94])
def test_agreement_six_percent_off_fails(gc_mod, factor):
    cuda = 500 * MiB
    rows = [
        mem_row("dense/sdpa", 1024, cuda, cuda),
        mem_row("dense/kvcache", 1024, int(cuda * factor), cuda),
    ]
    lines, passed = gc_mod.agreement(rows)
    assert not passed
    assert lines[2].endswith("PASS") and lines[3].endswith("FAIL")
    assert "1/2 compared points" in lines[-1]


def test_agreement_net_of_weights_column(gc_mod):
    # weights 100 MiB: tracker 300 - 100 against CUDA 310 - 100 -> 200/210 net, 300/310 gated
    row = mem_row("dense/naive", 4096, 300 * MiB, 310 * MiB)
    lines, passed = gc_mod.agreement([row])
    assert passed
    assert f"{300 / 310:.4f}" in lines[2] and f"{200 / 210:.4f}" in lines[2]


def test_agreement_without_allocator_is_na_on_cpu(gc_mod):
    rows = [mem_row("inattn/state", 64, 3 * MiB, None, device="cpu")]
    lines, passed = gc_mod.agreement(rows)
    assert passed
    assert lines[2].endswith("n/a (no CUDA allocator on cpu)")
    assert "0/0 compared" in lines[-1] and "1 without an allocator reading" in lines[-1]


def test_agreement_missing_reading_on_cuda_fails(gc_mod):
    lines, passed = gc_mod.agreement([mem_row("dense/sdpa", 64, 3 * MiB, None)])
    assert not passed
    assert "FAIL (no CUDA allocator reading)" in lines[2]


def test_agreement_skipped_point_does_not_fail(gc_mod):
    skipped = mem_row("dense/naive", 16384, None, None, status="skipped", note="too big")
    ok = mem_row("dense/sdpa", 16384, 200 * MiB, 200 * MiB)
    lines, passed = gc_mod.agreement([skipped, ok])
    assert passed
    assert "SKIP (too big)" in lines[2]
    assert "1 skipped" in lines[-1]


def test_agreement_without_rows_fails(gc_mod):
    lines, passed = gc_mod.agreement([])
    assert not passed and lines == ["no memory point was measured"]


# ----------------------------------------------------------------------------- the plans


def test_full_plan_covers_every_mode_and_builds_valid_specs(gc_mod):
    expected = {f"{a}/{m}" for a in ("dense", "inattn") for m in modes_for(a)}
    assert set(gc_mod.MEMORY_MODES) == expected
    plan = gc_mod.FULL
    assert (plan.n_layer, plan.n_head, plan.d_model, plan.vocab) == (12, 12, 768, 50257)
    assert max(plan.speed_T) == 131072 and plan.dtype == "bf16"
    assert (gc_mod.QUICK.size, gc_mod.QUICK.d_model) == ("nano", 64)  # conf/size/nano.yaml
    # cuda specs cannot be built here; cpu runs the same validation (modes, limit, HF peer)
    for measure, modes, Ts in (
        ("memory", gc_mod.MEMORY_MODES, plan.memory_T),
        ("speed", [*gc_mod.SPEED_MODES, gc_mod.HF_KEY], plan.speed_T),
    ):
        for T in Ts:
            spec = plan.spec(measure, modes, T, "cpu")
            assert spec.context_lengths == [T] and spec.memory_limit == 40 * 2**30


def test_hf_peer_probe(gc_mod, monkeypatch):
    pytest.importorskip("transformers")
    assert gc_mod.hf_peer_problem("cpu", "bf16") is None

    def broken(model):
        raise TypeError("GPT2Config got an unexpected keyword\nmore")

    monkeypatch.setattr(gc_mod, "build_hf_gpt2", broken)
    assert (
        gc_mod.hf_peer_problem("cpu", "bf16") == "TypeError: GPT2Config got an unexpected keyword"
    )
    monkeypatch.setattr(gc_mod, "hf_available", lambda: False)
    assert gc_mod.hf_peer_problem("cpu", "bf16") == "transformers is not installed"


def test_slug(gc_mod):
    assert gc_mod.slug("NVIDIA H100 80GB HBM3") == "nvidia-h100-80gb-hbm3"
    assert gc_mod.slug("cpu") == "cpu"


# ----------------------------------------------------------------------------- runs


def env() -> dict[str, str]:
    return {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}


def test_quick_cpu_run(gc_mod, tmp_path):
    out = tmp_path / "gpu"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--device", "cpu", "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        env=env(),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = (out / "summary.txt").read_text()
    assert proc.stdout == text
    for field in ("device:       cpu", f"torch:        {torch.__version__}", "git revision:"):
        assert field in text
    assert "--device cpu --quick --out" in text and "wall time:" in text
    assert "status:       done" in text and text.rstrip().endswith("verdict: PASS")
    na = [ln for ln in text.splitlines() if ln.endswith("n/a (no CUDA allocator on cpu)")]
    assert len(na) == 2 * (len(modes_for("dense")) + len(modes_for("inattn")))  # 2 contexts
    assert "ttft s" in text and "decode tok/s" in text and "inattn/state" in text
    if gc_mod.hf_available():
        assert "hf/kvcache timed" in text
        assert len([ln for ln in text.splitlines() if "hf/kvcache  " in ln]) == 2  # 2 contexts
    assert "errors" not in text
    for measure, png in (("memory", "memory_vs_context.png"), ("speed", "speed_vs_context.png")):
        for T in (16, 64):
            folder = out / f"{measure}_T{T}"
            for name in ("results.csv", "results.json", png):
                assert (folder / name).stat().st_size > 0, folder / name
            assert not (folder / "error.txt").exists()
    csv_lines = (out / "memory_T64" / "results.csv").read_text().splitlines()
    assert len(csv_lines) == 1 + 7  # header + every mode of both architectures


def test_a_failing_grid_is_recorded_and_exits_1(gc_mod, tmp_path, monkeypatch, capsys):
    calls = []

    def fake_bench(spec, folder, **kwargs):
        T = spec.context_lengths[0]
        calls.append((spec.measure, T))
        if spec.measure == "memory" and T == 64:
            raise RuntimeError("CUDA out of memory. Tried to allocate 6.00 GiB\nmore detail")
        rows = [mem_row(k, T, MiB, None, device="cpu") for k in spec.modes]
        return BenchResult(rows if spec.measure == "memory" else [], [])

    monkeypatch.setattr(gc_mod, "run_bench", fake_bench)
    monkeypatch.setattr(gc_mod, "hf_available", lambda: False)
    code = gc_mod.main(["--device", "cpu", "--quick", "--out", str(tmp_path)])
    assert code == 1
    # the grids after the failing one still ran
    assert calls == [("memory", 16), ("memory", 64), ("speed", 16), ("speed", 64)]
    text = (tmp_path / "summary.txt").read_text()
    assert "memory T=64 (memory_T64): RuntimeError: CUDA out of memory." in text
    assert "more detail" not in text.split("== errors")[1]
    assert "Traceback" in (tmp_path / "memory_T64" / "error.txt").read_text()
    assert "status:       done" in text and text.rstrip().endswith("verdict: FAIL")
    assert "no speed point was measured" in text
    assert "hf peer:" in text and "left out (transformers is not installed)" in text
    capsys.readouterr()


def test_summary_before_the_end_says_incomplete(gc_mod, tmp_path):
    part = gc_mod.Part("memory", 16, tmp_path / "memory_T16", [], 0.1, error=None)
    part.rows = [mem_row("dense/sdpa", 16, MiB, None, device="cpu")]
    text, passed = gc_mod.summary({"device": "cpu"}, [part], planned=3, seconds=6.0)
    assert not passed
    assert "running: 1 of 3 grids done" in text and text.rstrip().endswith("INCOMPLETE")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_one_line_exit_2(gc_mod, tmp_path, capsys):
    code = gc_mod.main(["--device", "cuda", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: --device cuda")
    assert not (tmp_path / "x").exists()


def test_unknown_device_is_exit_2(gc_mod, capsys):
    with pytest.raises(SystemExit) as exc:
        gc_mod.main(["--device", "tpu"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
