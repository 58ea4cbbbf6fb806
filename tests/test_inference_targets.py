"""The verdicts of benchmarks/inference_targets.py on synthetic rows, and one tiny run."""

from __future__ import annotations

import pytest

from inattn.bench import Fit, Row
from tests.benchmark_scripts import benchmark_script


@pytest.fixture(scope="module")
def targets():
    with benchmark_script("inference_targets") as module:
        yield module


def row(key: str, T: int, **fields) -> Row:
    arch, mode = key.split("/")
    return Row("s", key, arch, mode, T, "meta", "bf16", "learned", 1, **fields)


def memory_rows(plan, extra_per_token: float) -> list[Row]:
    """InAttention state growing as T*d*2 (+ extra) over a fixed workspace; dense K/V at 2L x."""
    d, L, W, ws = plan.d_model, plan.n_layer, 100_000, 50_000
    rows = []
    for T in plan.memory_T:
        act = int(T * d * 2 + ws + (T - plan.memory_T[0]) * extra_per_token)
        rows.append(
            row(
                "inattn/state",
                T,
                weight_bytes=W,
                peak_bytes=W + act,
                activation_bytes=act,
                state_bytes=T * d * 2,
            )
        )
        rows.append(row("dense/kvcache", T, state_bytes=2 * L * T * d * 2))
    return rows


def fits(state_exponent: float, naive_exponent: float) -> list[Fit]:
    return [
        Fit("s", "inattn/state", state_exponent, state_exponent, 64, 512, 4),
        Fit("s", "dense/naive", naive_exponent, naive_exponent, 64, 512, 4),
    ]


def verdicts(checks) -> list[bool]:
    return [c.passed for c in checks]


def test_memory_checks_pass_on_the_bound_and_miss_above_it(targets):
    plan = targets.PLANS["quick"]
    checks, lines = targets.memory_checks(memory_rows(plan, 0), fits(1.0, 2.0), plan)
    assert verdicts(checks) == [True, True, True, False]  # nano: 2L = 4 < 21
    assert "4.00" in checks[3].measured
    assert any("growth per token" in ln and "128.0 B" in ln for ln in lines)  # d*2 = 128
    # half as much again per token as T*d*2 breaks the 1.05 bound at the longest T
    over, _ = targets.memory_checks(memory_rows(plan, 0.5 * 128), fits(1.0, 2.0), plan)
    assert verdicts(over)[0] is False
    slopes, _ = targets.memory_checks(memory_rows(plan, 0), fits(0.9, 1.8), plan)
    assert verdicts(slopes)[1:3] == [False, False]


def test_ttft_checks(targets):
    plan = targets.PLANS["quick"]

    def rows(ratios):
        out = []
        for T, r in zip(plan.ttft_T, ratios, strict=True):
            out.append(row("inattn/state", T, ttft_s=0.01, ttft_min_s=0.01, ttft_max_s=0.01))
            out.append(row("dense/sdpa", T, ttft_s=0.01 * r, ttft_min_s=0.01 * r, ttft_max_s=1))
        return out

    good, _ = targets.ttft_checks(rows([20, 60, 120]), plan)
    assert verdicts(good) == [True, True]
    slow, _ = targets.ttft_checks(rows([20, 90, 80]), plan)
    assert verdicts(slow) == [False, False]


def test_decode_checks(targets):
    plan = targets.PLANS["quick"]

    def rows(ratio):
        out = []
        for T in plan.decode_T:
            for key, rate in (("dense/kvcache", 10.0), ("inattn/kvcache", 10.0 * ratio)):
                out.append(
                    row(key, T, decode_tok_s=rate, decode_min_tok_s=rate, decode_max_tok_s=rate)
                )
        return out

    assert all(verdicts(targets.decode_checks(rows(0.95), plan)[0]))
    assert not any(verdicts(targets.decode_checks(rows(0.85), plan)[0]))


def test_quick_plan_is_the_conf_nano_size_and_the_full_plan_gpt2_small(targets):
    quick, full = targets.PLANS["quick"], targets.PLANS["full"]
    assert (quick.size, quick.n_layer, quick.n_head, quick.d_model) == ("nano", 2, 2, 64)
    assert (full.size, full.n_layer, full.n_head, full.d_model) == ("gpt2-small", 12, 12, 768)
    assert full.vocab == 50257


def test_quick_memory_run_writes_its_grid(targets, tmp_path, capsys):
    out = tmp_path / "report.txt"
    argv = ["--quick", "--parts", "memory", "--no-progress", "--out-dir", str(tmp_path)]
    assert targets.main([*argv, "--out", str(out)]) == 0
    report = out.read_text()
    assert report.startswith("Inference targets: nano shape")
    assert "summary: " in report and "targets met" in report
    folder = tmp_path / "memory_nano_meta_bf16"
    assert {"results.csv", "results.json", "memory_vs_context.png"} <= {
        p.name for p in folder.iterdir()
    }
    assert capsys.readouterr().out == report
