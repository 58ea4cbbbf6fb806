"""Wall time of the full memory grid on fake tensors: every mode, T = 2^10 .. 2^20, gpt2-small.

A point on fake tensors allocates nothing: its cost is Python dispatch, about one FakeTensor
dispatch per op (half of them `prim.device` queries the C++ kernels make of a fake tensor), so a
chunked prefill costs a fixed time per chunk per layer, and the grid's time is the number of
prefill steps it runs. Two changes cut it, each measured here:

1. the prefill chunk of the memory grid: 8192 positions instead of 1024, 8x fewer steps. The
   workspace it adds is the same at every T, so the per-token growth and the fitted exponents do
   not move; the peaks do, by a constant, printed below for every chunked mode;
2. points side by side in worker processes (`jobs`, one per core): fake tensors share nothing.

The tracker itself costs little beside the fake mode: printed as the third part.

Part 1 times the chunked modes at one context with both chunks, interleaved, in this process
(one thread); part 2 runs the full grid as the `inattn-bench` command below, in workers, and
writes it as an `inattn-bench` results folder; part 3 checks the grid against the targets.

    python benchmarks/memory_grid_time.py --out benchmarks/results/memory_grid_time.txt \
        --grid experiments/bench/memory_grid_gpt2-small_meta_bf16
    python benchmarks/memory_grid_time.py --quick          # every code path in seconds
"""

from __future__ import annotations

import argparse
import contextlib
import math
import shlex
import sys
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from inattn.bench.grid import Row
from inattn.bench.measure import memory_point
from inattn.bench.run import run_bench
from inattn.bench.spec import BenchSpec
from inattn.claims import growth_matches, growth_per_token
from inattn.cli.bench import spec_from_config
from inattn.config import CONF_DIR
from inattn.inference import cache_bytes_per_token, prefill
from inattn.memory import MemoryTracker, fake_module, fake_tokens
from inattn.model import GPT
from inattn.reporting.provenance import BenchmarkRun

CHUNKED = ("dense/kvcache", "mqa/kvcache", "cla/kvcache", "inattn/state", "inattn/kvcache")
BEFORE, AFTER = 1024, 8192  # prefill chunk of the grid before and after
LIMIT_S = 300.0  # the target: the full grid in under 5 minutes on 2 cores
GROWTH_TOLERANCE = 0.02


def grid_overrides(size: str, top: int, chunk: int, jobs: str) -> list[str]:
    lengths = ",".join(str(2**p) for p in range(10, top + 1))
    return [
        f"size={size}",
        "device=meta",
        "dtype=bf16",
        f"chunk={chunk}",
        f"jobs={jobs}",
        f"context_lengths=[{lengths}]",
    ]


def grid_spec(overrides: list[str]) -> BenchSpec:
    """The spec `inattn-bench <overrides>` would measure (the size read from conf/size)."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        return spec_from_config(compose("bench", overrides=overrides))


def point_seconds(spec: BenchSpec, key: str, T: int, chunk: int) -> tuple[float, int]:
    """Seconds and tracked peak of one point, measured in this process."""
    variant, mode = key.split("/")
    cfg = spec.gpt_config(next(iter(spec.sizes)), variant)
    model = fake_module(lambda: GPT(cfg), dtype=spec.torch_dtype)
    start = time.perf_counter()
    peak = memory_point(model, T, mode, "meta", chunk).peak_bytes
    return time.perf_counter() - start, peak


def chunk_part(spec: BenchSpec, T: int, rounds: int) -> tuple[list[str], dict[str, float]]:
    """Each chunked mode at T with the two chunks, interleaved; seconds per prefill step."""
    lines = [
        f"## 1. One point per chunked mode at T = {T:,}, chunk {BEFORE} against {AFTER} "
        f"(best of {rounds}, interleaved, one thread)",
        "",
        f"| mode | s, chunk {BEFORE} | s, chunk {AFTER} | ratio | s per step ({BEFORE}) "
        f"| peak difference |",
        "|---|---|---|---|---|---|",
    ]
    per_step = {}
    for key in CHUNKED:
        times: dict[int, list[float]] = {BEFORE: [], AFTER: []}
        peaks = {}
        for _ in range(rounds):
            for chunk in (BEFORE, AFTER):
                seconds, peaks[chunk] = point_seconds(spec, key, T, chunk)
                times[chunk].append(seconds)
        before, after = min(times[BEFORE]), min(times[AFTER])
        per_step[key] = before / math.ceil(T / BEFORE)
        diff = (peaks[AFTER] - peaks[BEFORE]) / 2**20
        lines.append(
            f"| {key} | {before:.2f} | {after:.2f} | {before / after:.1f}x | "
            f"{per_step[key]:.3f} | {diff:+.1f} MiB |"
        )
    return lines, per_step


def tracker_part(spec: BenchSpec, T: int) -> list[str]:
    """dense/kvcache at T on fake tensors, with and without the tracker around it."""
    cfg = spec.gpt_config(next(iter(spec.sizes)), "dense")
    model = fake_module(lambda: GPT(cfg), dtype=spec.torch_dtype)
    idx = fake_tokens(1, T, cfg.vocab_size, like=model)
    best = {False: math.inf, True: math.inf}  # tracked? -> seconds, best of two interleaved
    for _ in range(2):
        for tracked in (False, True):
            start = time.perf_counter()
            with model.tok_emb.weight.fake_mode, torch.no_grad():
                with MemoryTracker() if tracked else contextlib.nullcontext():
                    prefill(model, idx, "kvcache", chunk=BEFORE)
            best[tracked] = min(best[tracked], time.perf_counter() - start)
    base, tracked = best[False], best[True]
    return [
        f"## 3. Tracker overhead: dense/kvcache at T = {T:,}, chunk {BEFORE} (best of 2)",
        "",
        f"fake mode only {base:.2f} s; with the tracker {tracked:.2f} s "
        f"({tracked / base - 1:+.0%})",
    ]


def steps_of(spec: BenchSpec, chunk: int) -> int:
    """Prefill steps of one chunked mode over the grid's contexts."""
    return sum(math.ceil(T / chunk) for T in spec.context_lengths)


def grid_part(
    spec: BenchSpec, command: str, out: Path, per_step: dict[str, float]
) -> tuple[list[str], list[Row], float]:
    start = time.perf_counter()
    result = run_bench(spec, out, wandb=None, progress=True, command=command)
    seconds = time.perf_counter() - start
    before = sum(per_step[k] for k in CHUNKED) * steps_of(spec, BEFORE)
    lines = [
        "## 2. The full grid",
        "",
        f"    {command}",
        "",
        f"{len(result.rows)} points ({len(spec.modes)} modes x {len(spec.context_lengths)} "
        f"contexts) in {seconds:.0f} s = {seconds / 60:.1f} min with {spec.workers} worker "
        f"processes; results in {out}.",
        f"Before (chunk {BEFORE}, one process): the chunked modes alone would run "
        f"{steps_of(spec, BEFORE):,} prefill steps each; at part 1's seconds per step that is "
        f"{before / 60:.0f} min (projected from the measured step times, not run).",
    ]
    return lines, result.rows, seconds


def growth(rows: list[Row], key: str) -> float | None:
    """Bytes per token between the two longest contexts of a mode (`inattn.claims`' rule)."""
    points = [(r.context, r.peak_bytes) for r in rows if r.key == key and r.peak_bytes]
    if len(points) < 2:
        return None
    return growth_per_token(*zip(*points, strict=True))


def target_part(spec: BenchSpec, rows: list[Row], seconds: float) -> tuple[list[str], bool]:
    size = next(iter(spec.sizes))
    lines = ["## Targets", ""]
    checks = [(f"full grid under {LIMIT_S / 60:.0f} min", f"{seconds:.0f} s", seconds < LIMIT_S)]
    state = growth(rows, "inattn/state")
    for key in ("mqa/kvcache", "cla/kvcache"):
        cfg = spec.gpt_config(size, key.split("/")[0])
        formula = cache_bytes_per_token(cfg, "kvcache", spec.torch_dtype)  # 2 ceil(L/s) n_kv hd b
        measured = growth(rows, key)
        ok = measured is not None and growth_matches(measured, formula, GROWTH_TOLERANCE)
        shown = "n/a" if measured is None else f"{measured:,.1f} B/token vs {formula:,}"
        checks.append((f"{key} growth within 2% of 2 ceil(L/s) n_kv hd x 2 B", shown, ok))
    cla = growth(rows, "cla/kvcache")
    if cla is not None and state is not None:
        ok = growth_matches(cla, state, GROWTH_TOLERANCE)
        checks.append(
            (
                "cla/kvcache growth equal to inattn/state within 2%",
                f"{cla:,.1f} vs {state:,.1f} B/token",
                ok,
            )
        )
    for name, measured, ok in checks:
        lines.append(f"- {name}: {measured}: {'ok' if ok else 'FAILED'}")
    return lines, all(ok for _, _, ok in checks)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="nano shape, T up to 2^13: seconds")
    p.add_argument("--rounds", type=int, default=2, help="rounds of part 1 (best is kept)")
    p.add_argument(
        "--grid",
        type=Path,
        default=Path("outputs/bench/memory_grid"),
        help="folder for the full grid's results",
    )
    p.add_argument("--out", type=Path, default=None, help="also write the report here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    torch.set_num_threads(1)
    run = BenchmarkRun()
    size, top, T = ("nano", 13, 2**12) if args.quick else ("gpt2-small", 20, 2**16)
    overrides = grid_overrides(size, top, AFTER, "null")
    spec = grid_spec(overrides)
    command = shlex.join(["inattn-bench", *overrides])
    part1, per_step = chunk_part(spec, T, args.rounds)
    part2, rows, seconds = grid_part(spec, command, args.grid, per_step)
    part3 = tracker_part(spec, T)
    targets, ok = target_part(spec, rows, seconds)
    body = "\n".join([*part1, "", *part2, "", *part3, "", *targets]) + "\n"
    header = run.header("Memory grid wall time", shlex.join(["python", *sys.argv]))
    BenchmarkRun.emit(header + "\n\n" + body, args.out)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
