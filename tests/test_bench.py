"""The inference benchmark (inattn.bench, inattn-bench) on tiny models: memory and speed grids,
the memory-limit skip, the exponent fits, the files a run writes, and bad input on the CLI."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from itertools import product
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from inattn.bench import (
    COLUMNS,
    DEFAULT_KEYS,
    HF_KEY,
    BenchResult,
    BenchSpec,
    Row,
    fit_exponent,
    memory_fits,
    parse_limit,
    run_bench,
    run_grid,
    split_key,
)
from inattn.bench.grid import Models
from inattn.bench.runners import HFRunner, ModeRunner
from inattn.cli import bench as bench_cli
from inattn.cli.bench import spec_from_config
from inattn.config import CONF_DIR
from inattn.errors import ConfigError
from inattn.model import GPT, variant_fields
from inattn.units import human_bytes
from tests.helpers import THREADS, cli_in_process, one_thread  # noqa: F401

SHAPE = {"n_layer": 2, "n_head": 2, "d_model": 32}
SIZES = {"t": SHAPE}
VOCAB = 100
CONTEXTS = [16, 64]
BYTES = {"fp32": 4, "bf16": 2}
ID_BYTES = torch.long.itemsize  # naive and sdpa keep the token ids between steps
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def spec(**kw) -> BenchSpec:
    """A grid over the tiny shape; keyword arguments replace any field."""
    base = dict(
        sizes=SIZES, context_lengths=CONTEXTS, model={"vocab_size": VOCAB}, chunk=16, seed=0
    )
    return BenchSpec(**(base | kw))


def state_formula(mode: str, T: int, dtype: str, variant: str = "dense") -> int:
    """Cache bytes after a T-token prefill, batch 1, from the shapes alone (design sections 3, 5):
    a K/V cache keeps n_kv heads for each group of kv_share layers."""
    L, H, d, b = SHAPE["n_layer"], SHAPE["n_head"], SHAPE["d_model"], BYTES[dtype]
    v = variant_fields(variant, H)
    kv_width = (v["n_kv_head"] or H) * d // H
    kv = 2 * -(-L // v["kv_share"]) * T * kv_width * b
    return {"state": T * d * b, "kvcache": kv}.get(mode, T * ID_BYTES)


def by_point(rows: list[Row]) -> dict[tuple[str, str, int], Row]:
    return {(r.size, r.key, r.context): r for r in rows}


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


# ----------------------------------------------------------------------------- memory grid


@pytest.fixture(scope="module")
def memory_runs(tmp_path_factory, one_thread) -> dict[str, tuple[BenchResult, Path]]:  # noqa: F811
    """The default modes on cpu and on meta (fake tensors), fp32, written to two folders.

    No memory limit: the estimate a limit takes first is itself a fake-tensor measurement, which
    the meta run makes for every point (the limit has its own tests).
    """
    runs = {}
    for device in ("cpu", "meta"):
        out = tmp_path_factory.mktemp(f"memory-{device}")
        grid = spec(device=device, memory_limit=None)
        result = run_bench(grid, out, progress=False, command=f"test {device}")
        runs[device] = (result, out)
    return runs


def test_meta_points_in_worker_processes_are_the_serial_numbers(memory_runs):
    """jobs=2 measures the points in two processes: the same rows, in the same order."""
    serial = memory_runs["meta"][0].rows
    parallel = run_grid(spec(device="meta", memory_limit=None, jobs=2), progress=False)
    assert [r.to_dict() for r in parallel] == [r.to_dict() for r in serial]
    assert spec(device="meta", jobs=None).workers == (os.cpu_count() or 1)  # null: one per core
    assert spec(device="cpu", jobs=None).workers == 1  # real devices: one point at a time


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_memory_run_writes_csv_json_and_plot(memory_runs, device):
    result, out = memory_runs[device]
    assert set(result.files) == {"csv", "json", "memory_vs_context"}
    header, lines = read_csv(out / "results.csv")
    assert header == COLUMNS
    points = [(line["size"], line["key"], int(line["context"])) for line in lines]
    assert points == list(product(SIZES, DEFAULT_KEYS, CONTEXTS))  # sizes, modes, contexts
    assert {line["device"] for line in lines} == {device}
    assert all(line["status"] == "ok" and int(line["peak_bytes"]) > 0 for line in lines)

    data = json.loads((out / "results.json").read_text())
    assert [(r["key"], r["context"]) for r in data["rows"]] == [(k, T) for _, k, T in points]
    assert sorted(f["key"] for f in data["fits"]) == sorted(DEFAULT_KEYS)
    assert data["command"] == f"test {device}"
    assert isinstance(data["git_revision"], str) and data["git_revision"]
    assert "torch" in data["machine"]
    assert data["spec"]["device"] == device and data["spec"]["sizes"] == SIZES
    assert (out / "memory_vs_context.png").read_bytes()[:8] == PNG_MAGIC


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_memory_rows_follow_the_shapes(memory_runs, device):
    """State bytes from the cache shapes; weights from the parameters; the cache inside the peak."""
    result, _ = memory_runs[device]
    grid = spec()
    for row in result.rows:
        model = GPT(grid.gpt_config(row.size, row.arch))  # real parameters: the independent count
        weights = sum(p.numel() * p.element_size() for p in model.parameters())
        assert row.params == model.num_params()
        assert row.weight_bytes == weights, row.key
        assert row.state_bytes == state_formula(row.mode, row.context, "fp32", row.arch), row.key
        assert row.state_bytes_per_token == row.state_bytes / row.context
        assert row.activation_bytes == row.peak_bytes - row.weight_bytes
        assert row.peak_bytes >= weights + row.state_bytes + row.context * ID_BYTES
        assert row.cuda_peak_bytes is None
    fits = {f.key: f for f in result.fits}
    assert all((f.points, f.fitted_from, f.fitted_to) == (2, 16, 64) for f in fits.values())
    assert fits["dense/naive"].exponent > fits["dense/sdpa"].exponent  # materialised T x T scores


def test_cpu_and_meta_track_the_same_peak(memory_runs):
    cpu, meta = (by_point(memory_runs[d][0].rows) for d in ("cpu", "meta"))
    assert cpu.keys() == meta.keys()
    for point, row in cpu.items():
        fake = meta[point]
        assert (row.peak_bytes, row.weight_bytes, row.state_bytes) == (
            fake.peak_bytes,
            fake.weight_bytes,
            fake.state_bytes,
        ), point
        assert row.estimated_peak_bytes is fake.estimated_peak_bytes is None  # no limit


def test_bf16_state_bytes_and_cpu_meta_agreement(one_thread):  # noqa: F811
    rows = {
        device: by_point(
            run_grid(
                spec(
                    modes=["inattn/state", "dense/kvcache"],
                    context_lengths=[32],
                    dtype="bf16",
                    device=device,
                ),
                progress=False,
            )
        )
        for device in ("cpu", "meta")
    }
    for point, row in rows["cpu"].items():
        assert row.state_bytes == state_formula(row.mode, row.context, "bf16", row.arch)
        assert row.peak_bytes == rows["meta"][point].peak_bytes, point


# ----------------------------------------------------------------------------- memory limit


def test_memory_limit_skips_on_cpu_and_not_on_meta(memory_runs, tmp_path, one_thread):  # noqa: F811
    """A limit between the two contexts' peaks: the short one runs, the long one is skipped."""
    meta = by_point(memory_runs["meta"][0].rows)
    short, long = (meta["t", "inattn/state", T].peak_bytes for T in CONTEXTS)
    limit = short  # an estimate equal to the limit still runs
    assert long > limit
    result = run_bench(
        spec(modes=["inattn/state"], memory_limit=limit), tmp_path, progress=False, command="x"
    )
    ran, skipped = result.rows
    assert (ran.status, ran.peak_bytes, ran.estimated_peak_bytes) == ("ok", short, short)
    assert skipped.status == "skipped"
    assert skipped.estimated_peak_bytes == long
    assert skipped.peak_bytes is skipped.state_bytes is skipped.activation_bytes is None
    assert "memory_limit" in skipped.note and human_bytes(limit) in skipped.note
    (fit,) = result.fits
    assert (fit.points, fit.exponent) == (1, None)  # the skipped point is not fitted
    _, lines = read_csv(tmp_path / "results.csv")
    assert [line["status"] for line in lines] == ["ok", "skipped"]
    assert lines[1]["note"] == skipped.note and lines[1]["peak_bytes"] == ""

    on_meta = run_grid(spec(modes=["inattn/state"], memory_limit=limit, device="meta"), False)
    assert [r.status for r in on_meta] == ["ok", "ok"]
    assert [r.peak_bytes for r in on_meta] == [short, long]
    assert all(r.estimated_peak_bytes is None for r in on_meta)


@pytest.mark.parametrize("measure", ["memory", "speed"])
def test_a_tiny_limit_skips_every_point_without_crashing(measure, tmp_path, one_thread):  # noqa: F811
    grid = spec(
        modes=["dense/kvcache", "inattn/state"],
        measure=measure,
        memory_limit=1,
        repeats=1,
        warmup=0,
        decode_steps=1,
    )
    result = run_bench(grid, tmp_path, progress=False, command="x")
    assert len(result.rows) == 4
    for row in result.rows:
        assert row.status == "skipped" and "memory_limit 1 B" in row.note
        assert row.estimated_peak_bytes > 1
        assert row.peak_bytes is row.ttft_s is row.decode_tok_s is None
    assert result.fits == []
    assert all(path.exists() for path in result.files.values())
    assert "memory_limit" in result.table


# ----------------------------------------------------------------------------- speed


def test_speed_grid_times_every_mode(tmp_path, one_thread):  # noqa: F811
    keys = ["dense/naive", "dense/kvcache", "inattn/state", "inattn/kvcache"]
    grid = spec(modes=keys, measure="speed", repeats=1, warmup=0, decode_steps=2)
    result = run_bench(grid, tmp_path, progress=False, command="x")
    assert [(r.key, r.context) for r in result.rows] == [(k, T) for T in CONTEXTS for k in keys]
    for row in result.rows:
        assert row.status == "ok" and (row.repeats, row.decode_steps) == (1, 2)
        assert row.ttft_s > 0 and row.ttft_min_s == row.ttft_s == row.ttft_max_s
        assert row.peak_bytes is None
        if row.mode == "naive":
            assert row.decode_tok_s is None and "reruns the whole context" in row.note
        else:
            assert row.decode_tok_s > 0 and row.note == "", row.key
    assert result.fits == []
    assert set(result.files) == {"csv", "json", "speed_vs_context"}
    assert (tmp_path / "speed_vs_context.png").read_bytes()[:8] == PNG_MAGIC
    assert not (tmp_path / "memory_vs_context.png").exists()
    header, lines = read_csv(tmp_path / "results.csv")
    assert header == COLUMNS and len(lines) == len(keys) * len(CONTEXTS)
    assert "decode tok/s" in result.table.splitlines()[0]


def test_speed_recompute_decode_and_untimed_prefill(one_thread):  # noqa: F811
    """recompute_decode times sdpa decoding too; past ttft_max_context only decode is timed."""
    grid = spec(
        modes=["dense/sdpa", "inattn/state"],
        context_lengths=[8, 16],
        measure="speed",
        repeats=1,
        warmup=0,
        decode_steps=2,
        recompute_decode=True,
        ttft_max_context=8,
    )
    rows = by_point(run_grid(grid, progress=False))
    for key in grid.modes:
        timed, filled = rows["t", key, 8], rows["t", key, 16]
        assert timed.ttft_s > 0 and timed.decode_tok_s > 0 and timed.note == ""
        assert filled.ttft_s is None and filled.decode_tok_s > 0
        assert "no prefill timed (ttft_max_context=8)" in filled.note


def test_speed_hf_peer_computes_our_dense_function(one_thread):  # noqa: F811
    pytest.importorskip("transformers")
    grid = spec(
        modes=["dense/kvcache", HF_KEY], measure="speed", repeats=1, warmup=0, decode_steps=2
    )
    ours, hf = (r for r in run_grid(grid, progress=False) if r.context == CONTEXTS[0])
    assert (hf.key, hf.arch, hf.mode) == (HF_KEY, "hf", "kvcache")
    assert hf.params == ours.params  # the peer holds the dense model's weights
    assert hf.ttft_s > 0 and hf.decode_tok_s > 0 and hf.note == ""

    models = Models(grid, "t")
    runners = [models.runner("dense/kvcache"), models.runner(HF_KEY)]
    assert isinstance(runners[0], ModeRunner) and isinstance(runners[1], HFRunner)
    idx = torch.randint(VOCAB, (1, 12), generator=torch.Generator().manual_seed(1))
    (a, cache_a), (b, cache_b) = (r.prefill(idx, 14) for r in runners)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    token = a.argmax(-1)
    (a, _), (b, cache_b) = (
        r.decode(token, c) for r, c in zip(runners, (cache_a, cache_b), strict=True)
    )
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    runners[1].rewind(cache_b, 12)
    assert cache_b.get_seq_length() == 12


# ----------------------------------------------------------------------------- fits


@pytest.mark.parametrize("slope", [1.0, 2.0, 0.5])
@pytest.mark.parametrize("tail", [1.0, 0.5])
def test_exact_power_laws_are_recovered(slope, tail):
    Ts = [2**k for k in range(4, 12)]
    assert abs(fit_exponent(Ts, [3.0 * T**slope for T in Ts], tail) - slope) < 1e-9
    shuffled = Ts[::2] + Ts[1::2]  # the order of the points does not matter
    values = [3.0 * T**slope for T in shuffled]
    assert abs(fit_exponent(shuffled, values, tail) - slope) < 1e-9


def test_the_tail_fit_sees_the_asymptote():
    """A constant workspace bends the short contexts down; the longest ones show the growth."""
    Ts = [2**k for k in range(4, 18)]
    ys = [1e5 + 100.0 * T for T in Ts]
    whole, tail = fit_exponent(Ts, ys, 1.0), fit_exponent(Ts, ys, 0.3)
    assert whole < tail < 1.0
    assert abs(tail - 1.0) < abs(whole - 1.0) / 2


def test_the_tail_is_the_longest_contexts():
    """Slope 2 up to T=64, slope 1 after: a tail of half of 6 points (3) sees slope 1 only."""
    Ts = [16, 32, 64, 128, 256, 512]
    ys = [T**2 if T <= 64 else 64 * T for T in Ts]
    assert abs(fit_exponent(Ts, ys, 0.5) - 1.0) < 1e-9
    assert fit_exponent(Ts, ys, 1.0) > 1.2


def test_too_few_points_and_non_positive_values():
    assert fit_exponent([], []) is None
    assert fit_exponent([16], [5.0]) is None
    assert fit_exponent([16, 32], [5.0, 0.0]) is None  # one point left
    assert fit_exponent([16, 16], [5.0, 7.0]) is None  # one distinct context
    assert fit_exponent([0, 16, 32], [1.0, 4.0, 8.0]) == pytest.approx(1.0, abs=1e-12)
    kept = fit_exponent([8, 16, 32, 64], [-3.0, 0.0, 8.0, 16.0], tail=1.0)
    assert abs(kept - 1.0) < 1e-9  # only (32, 8) and (64, 16) count


def fit_row(size: str, key: str, T: int, activation: int | None, status: str = "ok") -> Row:
    arch, mode = split_key(key)
    row = Row(size, key, arch, mode, T, "cpu", "fp32", "learned", 1, status)
    row.activation_bytes = activation
    return row


def test_memory_fits_group_per_size_and_mode_and_skip_skipped_rows():
    Ts = [16, 32, 64, 128]
    rows = [fit_row("a", "dense/naive", T, 5 * T**2) for T in Ts]
    rows += [fit_row("a", "inattn/state", T, 7 * T) for T in Ts]
    rows += [fit_row("b", "inattn/state", T, 11 * T**3) for T in Ts[:3]]
    rows.append(fit_row("b", "inattn/state", 128, 1, status="skipped"))  # off the law: not used
    rows.append(fit_row("b", "dense/naive", 16, 100))  # one point: no fit
    fits = {(f.size, f.key): f for f in memory_fits(rows, tail=0.5)}
    assert set(fits) == set(product("ab", ["dense/naive", "inattn/state"]))
    for (size, key), slope, points, start in (
        (("a", "dense/naive"), 2.0, 4, 64),
        (("a", "inattn/state"), 1.0, 4, 64),
        (("b", "inattn/state"), 3.0, 3, 32),  # ceil(3 * 0.5) = 2 points
    ):
        f = fits[size, key]
        assert abs(f.exponent - slope) < 1e-9 and abs(f.exponent_all - slope) < 1e-9
        assert (f.points, f.fitted_from) == (points, start)
        assert f.fitted_to == (128 if size == "a" else 64)
        assert f.label() == f"T^{slope:.2f}"
    lone = fits["b", "dense/naive"]
    assert (lone.exponent, lone.exponent_all, lone.points, lone.fitted_from) == (
        None,
        None,
        1,
        None,
    )
    assert lone.label() == "no fit"


# ----------------------------------------------------------------------------- spec errors


def test_split_key():
    assert split_key("dense/naive") == ("dense", "naive")
    assert split_key("inattn/state") == ("inattn", "state")
    assert split_key(HF_KEY) == ("hf", "kvcache")
    for bad in ("dense/bogus", "dense/state", "hf/naive", "naive", ""):
        with pytest.raises(ConfigError) as err:
            split_key(bad)
        assert err.value.field == "modes"


SPEC_ERRORS = {
    "measure": (dict(measure="latency"), "measure"),
    "device": (dict(device="gpu"), "device"),
    "dtype": (dict(dtype="fp7"), "dtype"),
    "no modes": (dict(modes=[]), "modes"),
    "unknown mode": (dict(modes=["dense/bogus"]), "modes"),
    "mode twice": (dict(modes=["inattn/state", "inattn/state"]), "modes"),
    "hf in memory": (dict(modes=[HF_KEY]), "modes"),
    "speed on meta": (dict(measure="speed", device="meta"), "device"),
    "no sizes": (dict(sizes={}), "sizes"),
    "size lacks a field": (dict(sizes={"t": {"n_layer": 2, "n_head": 2}}), "sizes"),
    "no contexts": (dict(context_lengths=[]), "context_lengths"),
    "zero context": (dict(context_lengths=[0]), "context_lengths"),
    "float context": (dict(context_lengths=[16.0]), "context_lengths"),
    "bool context": (dict(context_lengths=[True]), "context_lengths"),
    "repeats": (dict(repeats=0), "repeats"),
    "float repeats": (dict(repeats=1.5), "repeats"),
    "decode_steps": (dict(decode_steps=0), "decode_steps"),
    "warmup": (dict(warmup=-1), "warmup"),
    "chunk": (dict(chunk=0), "chunk"),
    "ttft_max_context": (dict(ttft_max_context=-1), "ttft_max_context"),
    "jobs zero": (dict(jobs=0), "jobs"),
    "jobs on a real device": (dict(jobs=2, device="cpu"), "jobs"),
    "jobs for speed": (dict(jobs=2, measure="speed"), "jobs"),
    "fit_tail zero": (dict(fit_tail=0.0), "fit_tail"),
    "fit_tail above one": (dict(fit_tail=1.5), "fit_tail"),
    "fit_tail text": (dict(fit_tail="x"), "fit_tail"),
    "negative memory_limit": (dict(memory_limit=-1), "memory_limit"),
    "memory_limit text": (dict(memory_limit="lots"), "memory_limit"),
    "GPT-2 peer with rope": (
        dict(modes=[HF_KEY], measure="speed", model={"vocab_size": VOCAB, "position": "rope"}),
        "modes",
    ),
    "GPT-2 peer untied": (
        dict(modes=[HF_KEY], measure="speed", model={"vocab_size": VOCAB, "tie_weights": False}),
        "modes",
    ),
    "heads": (dict(sizes={"t": {**SHAPE, "n_head": 3}}), "d_model"),
    "inattn without positions": (dict(model={"vocab_size": VOCAB, "position": "none"}), "position"),
    "vocabulary": (dict(model={"vocab_size": 0}), "vocab_size"),
}


@pytest.mark.parametrize("name", list(SPEC_ERRORS))
def test_spec_errors_name_the_field(name):
    kwargs, field = SPEC_ERRORS[name]
    with pytest.raises(ConfigError) as err:
        spec(**kwargs)
    assert err.value.field == field


def test_spec_accepts_nullable_fields_and_parses_limits():
    grid = spec(chunk=None, ttft_max_context=None, memory_limit=None, warmup=0)
    assert spec(memory_limit="2MiB").memory_limit == 2 * 2**20  # the API takes sizes as text too
    assert grid.chunk is None and grid.gpt_config("t", "inattn").context_length == max(CONTEXTS)
    speed = spec(measure="speed", decode_steps=3)
    assert speed.gpt_config("t", "dense").context_length == max(CONTEXTS) + 3  # decode positions
    assert parse_limit(None) is None
    assert parse_limit("512MiB") == 512 * 2**20 and parse_limit(4096) == 4096
    for bad in ("abc", 0, "-1GiB"):
        with pytest.raises(ConfigError) as err:
            parse_limit(bad)
        assert err.value.field == "memory_limit"


# ----------------------------------------------------------------------------- CLI


def compose_bench(*overrides: str) -> BenchSpec:
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            return spec_from_config(compose("bench", overrides=list(overrides)))
    finally:
        GlobalHydra.instance().clear()


def test_config_to_spec_arch_filter_and_sizes():
    grid = compose_bench("size=nano", "arch=inattn")
    assert grid.modes == [k for k in DEFAULT_KEYS if k.startswith("inattn/")]
    assert grid.sizes == {"nano": {"n_layer": 2, "n_head": 2, "d_model": 64}}
    assert "size" not in grid.model and "d_model" not in grid.model
    several = compose_bench("sizes=[nano,tiny]", "bench=speed", "repeats=2")
    assert list(several.sizes) == ["nano", "tiny"] and several.sizes["tiny"]["n_layer"] == 4
    assert (several.measure, several.repeats) == ("speed", 2)
    assert compose_bench("memory_limit=1MiB").memory_limit == 2**20


CLI_TINY = [
    "size=nano",
    f"model.d_model={SHAPE['d_model']}",
    f"model.vocab_size={VOCAB}",
    "chunk=16",
    "threads=1",
    "progress=false",
    "wandb.mode=disabled",
]


def bench_cmd(*args: str) -> subprocess.CompletedProcess:
    """The installed inattn-bench in its own process."""
    exe = Path(sys.executable).with_name("inattn-bench")
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", **THREADS}
    return subprocess.run([str(exe), *args], capture_output=True, text=True, env=env, timeout=300)


def test_console_script_writes_results_and_prints_the_table(tmp_path):
    run_dir = tmp_path / "run"
    keys = ["dense/sdpa", "inattn/state"]
    args = (f"modes=[{','.join(keys)}]", "context_lengths=[16,32]", "memory_limit=null")
    result = bench_cmd(*CLI_TINY, *args, f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["size", "mode", "T", "peak"]
    for key in keys:
        assert sum(line.split()[:2] == ["nano", key] for line in lines) == 2, key
    assert f"nano {keys[1]}: " in result.stdout  # its fitted exponent
    for name in ("results.csv", "results.json", "memory_vs_context.png"):
        assert (run_dir / name).is_file() and f"{run_dir / name}" in result.stdout
    header, rows = read_csv(run_dir / "results.csv")
    assert header == COLUMNS and len(rows) == 2 * len(keys)
    data = json.loads((run_dir / "results.json").read_text())
    assert data["spec"]["sizes"] == {"nano": SHAPE}  # the size override reached the model
    assert data["command"].startswith("inattn-bench ") and "chunk=16" in data["command"]
    assert "wandb" not in result.stdout and not (run_dir / "wandb").exists()


CLI_ERRORS = {
    "unknown mode": (["modes=[dense/bogus]"], "modes", True),
    "unknown dtype": (["dtype=fp7"], "dtype", False),
    "cuda without CUDA": (["device=cuda"], "device", False),
    "speed on meta": (["bench=speed", "device=meta"], "device", False),
    "zero context": (["context_lengths=[0]"], "context_lengths", False),
    "unknown size": (["sizes=[nano,huge]"], "sizes", False),
}


@pytest.mark.parametrize("name", list(CLI_ERRORS))
def test_cli_bad_input_is_one_line_and_exit_2(name, tmp_path, capsys, monkeypatch):
    args, field, in_subprocess = CLI_ERRORS[name]
    if name == "cuda without CUDA" and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    run_dir = tmp_path / "run"
    argv = [*CLI_TINY, *args, f"hydra.run.dir={run_dir}"]
    if in_subprocess:
        result = bench_cmd(*argv)
        code, out, err = result.returncode, result.stdout, result.stderr
    else:
        code, out, err = cli_in_process(bench_cli.main, argv, capsys, monkeypatch)
    assert code == 2, (out + err)[-3000:]
    assert "Traceback" not in out + err and out == ""
    (line,) = err.strip().splitlines()
    assert line.startswith(f"error: {field}: "), line
    assert not run_dir.exists()
