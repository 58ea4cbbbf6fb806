"""The pure parts of benchmarks/memory_grid_time.py: growth per token, steps, the targets."""

from __future__ import annotations

import pytest

from inattn.bench.grid import Row
from tests.benchmark_scripts import benchmark_script


def row(key: str, T: int, peak: int) -> Row:
    arch, mode = key.split("/")
    return Row("gpt2-small", key, arch, mode, T, "meta", "bf16", "learned", 1, peak_bytes=peak)


@pytest.fixture(scope="module")
def script():
    with benchmark_script("memory_grid_time") as module:
        yield module


@pytest.fixture(scope="module")
def spec(script):
    return script.grid_spec(script.grid_overrides("gpt2-small", 20, 8192, "null"))


def test_the_grid_is_every_default_mode_to_two_to_the_twenty(script, spec):
    assert spec.context_lengths == [2**p for p in range(10, 21)]
    assert spec.chunk == 8192 and spec.device == "meta" and spec.jobs is None
    assert len(spec.modes) == 7 and set(script.CHUNKED) <= set(spec.modes)
    assert spec.sizes["gpt2-small"] == {"n_layer": 12, "n_head": 12, "d_model": 768}  # conf/size
    assert script.steps_of(spec, 1024) == sum(max(1, 2**p // 1024) for p in range(10, 21))
    assert script.steps_of(spec, 8192) == 3 + sum(2**p // 8192 for p in range(13, 21))


def test_growth_is_taken_between_the_two_longest_contexts(script):
    rows = [row("cla/kvcache", 4, 100), row("cla/kvcache", 8, 120), row("cla/kvcache", 6, 110)]
    assert script.growth(rows, "cla/kvcache") == 5.0
    assert script.growth(rows[:1], "cla/kvcache") is None


def test_targets_pass_on_the_formula_and_fail_off_it(script, spec):
    T1, T2 = 2**19, 2**20

    def rows(mqa: float, cla: float, state: float) -> list[Row]:
        out = []
        for key, per_token in (("mqa/kvcache", mqa), ("cla/kvcache", cla), ("inattn/state", state)):
            out += [
                row(key, T1, int(1e9 + per_token * T1)),
                row(key, T2, int(1e9 + per_token * T2)),
            ]
        return out

    good, ok = script.target_part(spec, rows(2 * 12 * 64 * 2, 2 * 6 * 64 * 2 + 8, 1544), 100.0)
    assert ok and not any("FAILED" in line for line in good)
    _, slow = script.target_part(spec, rows(3072, 1544, 1544), 400.0)
    assert not slow
    lines, off = script.target_part(spec, rows(3072 * 1.05, 1544, 1544), 100.0)
    assert not off and sum("FAILED" in line for line in lines) == 1
