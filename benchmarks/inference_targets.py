"""Inference targets: memory against context, time to first token, decode tokens/s.

Three grids, each measured by `inattn.bench.run_bench` (the code behind `inattn-bench`) into a
folder of its own (results.csv, results.json, a PNG), then checked against the targets (the
model shape is conf/size/gpt2-small.yaml; the rules are `inattn.claims`, the thresholds here):

memory  gpt2-small shape, bf16, device=meta (fake tensors: shapes only, nothing allocated),
        T = 2^10 ... 2^20, modes dense/{naive,sdpa,kvcache} and inattn/{state,kvcache}.
        - InAttention (cache=state) peak <= 1.05 x (weights + T*d*2 bytes + the workspace
          measured at the shortest T), at every T;
        - fitted slope of (peak - weights) against T in [0.95, 1.05]; dense naive >= 1.9;
        - at T = 32768: dense K/V state / InAttention state >= 21 (the floor is 2L = 24).
ttft    gpt2-small shape, fp32, CPU, `--threads` threads, T = 1024 ... 8192: InAttention's
        next-token logits (cache=state) against the dense full forward (sdpa), >= 100x at 4096,
        growing with T.
decode  the same shape and precision, T = 1024, 4096, 16384: greedy decode tokens/s from a
        T-token cache, InAttention kvcache >= 0.9x dense kvcache; Hugging Face GPT-2 with
        use_cache=True as the outside peer; InAttention cache=state reported with where it stands.
        K/V caches are filled with random keys and values of the right shape instead of running a
        dense prefill (minutes at 16K on a CPU): a decode step costs the same whatever the numbers.

Timed modes run interleaved, round by round, so a drifting machine load hits all of them alike;
medians over rounds are compared, and the most pessimistic pairing of extremes is shown beside.

    python benchmarks/inference_targets.py --out-dir experiments/bench \\
        --out benchmarks/results/inference_targets.txt         # all three, ~16 min on 2 cores
    python benchmarks/inference_targets.py --parts ttft,decode # the timed parts only
    python benchmarks/inference_targets.py --quick             # every code path in seconds
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from inattn.bench import BenchSpec, Fit, Row, run_bench
from inattn.bench.runners import hf_available
from inattn.claims import (
    NO_CEILING,
    TOKEN_ID_BYTES,
    exponent_in_band,
    growth_per_token,
    state_row_bytes,
)
from inattn.reporting.provenance import BenchmarkRun
from inattn.sizes import NamedSize
from inattn.units import MiB, human_bytes

PARTS = ("memory", "ttft", "decode")


@dataclass(frozen=True)
class Plan(NamedSize):
    """A model size of conf/size and the contexts each part measures."""

    size: str
    vocab: int
    memory_T: tuple[int, ...]
    ttft_T: tuple[int, ...]
    decode_T: tuple[int, ...]
    ratio_T: int  # where the state ratio is checked
    ttft_T_check: int  # where the time-to-first-token ratio is checked


PLANS = {
    "full": Plan(
        "gpt2-small",
        50257,
        memory_T=tuple(2**k for k in range(10, 21)),
        ttft_T=(1024, 2048, 4096, 8192),
        decode_T=(1024, 4096, 16384),
        ratio_T=32768,
        ttft_T_check=4096,
    ),
    # every code path in seconds: the smallest conf size, short contexts
    "quick": Plan(
        "nano",
        256,
        memory_T=(64, 128, 256, 512),
        ttft_T=(64, 128, 256),
        decode_T=(64, 256),
        ratio_T=256,
        ttft_T_check=256,
    ),
}

MEMORY_MODES = ["dense/naive", "dense/sdpa", "dense/kvcache", "inattn/state", "inattn/kvcache"]
MEMORY_DTYPE = "bf16"
# the fitted slope of (peak - weights) against T each mode must have (claims.exponent_in_band)
EXPONENT_BANDS = {"inattn/state": (0.95, 1.05), "dense/naive": (1.9, NO_CEILING)}
TTFT_MODES = ["inattn/state", "dense/sdpa"]
DECODE_MODES = ["dense/kvcache", "inattn/kvcache", "hf/kvcache", "inattn/state"]


@dataclass
class Check:
    """One target: what was measured against what it should be."""

    name: str
    measured: str
    target: str
    passed: bool

    def line(self) -> str:
        verdict = "PASS" if self.passed else "MISS"
        return f"  {verdict}  {self.name}: {self.measured}  (target {self.target})"


# ----------------------------------------------------------------------------- the grids


def spec_of(plan: Plan, part: str, args: argparse.Namespace) -> BenchSpec:
    sizes = {plan.size: plan.shape}
    model = {"vocab_size": plan.vocab}
    if part == "memory":
        return BenchSpec(
            sizes,
            MEMORY_MODES,
            list(plan.memory_T),
            measure="memory",
            device="meta",
            dtype=MEMORY_DTYPE,
            model=model,
            fit_tail=0.5,
        )
    timed = dict(measure="speed", device="cpu", dtype="fp32", model=model, memory_limit=None)
    if part == "ttft":
        return BenchSpec(
            sizes, TTFT_MODES, list(plan.ttft_T), repeats=args.rounds, warmup=1, **timed
        )
    modes = [m for m in DECODE_MODES if m != "hf/kvcache" or hf_available()]
    return BenchSpec(
        sizes,
        modes,
        list(plan.decode_T),
        repeats=args.rounds,
        decode_steps=args.decode_steps,
        ttft_max_context=0,  # decode from filled caches: no prefill at all
        **timed,
    )


# ----------------------------------------------------------------------------- the checks


def rows_of(rows: Sequence[Row], key: str) -> dict[int, Row]:
    return {r.context: r for r in rows if r.key == key and r.status == "ok"}


def fit_of(fits: Sequence[Fit], key: str) -> Fit | None:
    return next((f for f in fits if f.key == key), None)


def memory_checks(
    rows: Sequence[Row], fits: Sequence[Fit], plan: Plan, dtype: str = MEMORY_DTYPE
) -> tuple[list[Check], list[str]]:
    """The memory targets, and a per-T listing of InAttention's peak against its bound."""
    state = rows_of(rows, "inattn/state")
    row_bytes = state_row_bytes(plan.d_model, dtype)  # T*d*2 in bf16
    T0 = min(state)
    weights = state[T0].weight_bytes
    workspace = state[T0].activation_bytes - T0 * row_bytes
    lines = [
        f"InAttention cache=state: weights {weights / MiB:,.1f} MiB, workspace at T={T0:,} "
        f"{workspace / MiB:,.2f} MiB (peak - weights - T*d*2 there)",
        f"  {'T':>9}  {'peak MiB':>10}  {'bound MiB':>10}  {'peak/bound':>10}  "
        f"{'(peak-W)/(T*d*2+ws)':>19}",
    ]
    worst, worst_strict = 0.0, 0.0
    for T, r in sorted(state.items()):
        growth = T * row_bytes + workspace
        ratio = r.peak_bytes / (weights + growth)
        strict = r.activation_bytes / growth
        worst, worst_strict = max(worst, ratio), max(worst_strict, strict)
        lines.append(
            f"  {T:>9,}  {r.peak_bytes / MiB:>10,.1f}  {(weights + growth) / MiB:>10,.1f}  "
            f"{ratio:>10.4f}  {strict:>19.4f}"
        )
    Ta, Tb = sorted(state)[-2:]
    per_token = growth_per_token(list(state), [r.activation_bytes for r in state.values()])
    lines += [
        f"  growth per token between T={Ta:,} and T={Tb:,}: {per_token:,.1f} B "
        f"(S: d*2 = {row_bytes:,} B; the context's int64 token ids: {TOKEN_ID_BYTES} B)",
        "  (weights include the learned position table, sized for the longest T; the last column",
        "  leaves them out)",
    ]
    checks = [
        Check(
            "InAttention peak / (weights + T*d*2 + workspace), worst T",
            f"{worst:.4f} (without the weights: {worst_strict:.4f})",
            "<= 1.05",
            worst <= 1.05,
        )
    ]
    for key, (low, high) in EXPONENT_BANDS.items():
        fit = fit_of(fits, key)
        exponent = fit.exponent if fit else None
        span = f"T = {fit.fitted_from:,}..{fit.fitted_to:,}" if fit and fit.fitted_from else ""
        measured = "no fit" if exponent is None else f"{exponent:.3f} on {span}"
        if fit and fit.exponent_all is not None:
            measured += f"; all {fit.points} points {fit.exponent_all:.3f}"
        target = f"in [{low}, {high}]" if high != NO_CEILING else f">= {low}"
        ok = exponent_in_band(exponent, (low, high))
        checks.append(Check(f"slope of (peak - weights) vs T, {key}", measured, target, ok))
    dense = rows_of(rows, "dense/kvcache")
    T = plan.ratio_T
    if T in dense and T in state:
        ratio = dense[T].state_bytes / state[T].state_bytes
        measured = (
            f"{ratio:.2f} ({human_bytes(dense[T].state_bytes)} / "
            f"{human_bytes(state[T].state_bytes)})"
        )
        checks.append(
            Check(f"dense K/V state / InAttention state at T={T:,}", measured, ">= 21", ratio >= 21)
        )
    else:
        checks.append(Check(f"state ratio at T={T:,}", "not measured", ">= 21", False))
    return checks, lines


def ttft_checks(rows: Sequence[Row], plan: Plan) -> tuple[list[Check], list[str]]:
    state, sdpa = rows_of(rows, "inattn/state"), rows_of(rows, "dense/sdpa")
    lines = [
        "time to first token, InAttention next-token logits (state) vs dense full forward (sdpa):",
        f"  {'T':>6}  {'state s':>9}  {'sdpa s':>9}  {'sdpa/state':>10}  {'worst pairing':>13}",
    ]
    ratios = {}
    for T in sorted(set(state) & set(sdpa)):
        s, d = state[T], sdpa[T]
        ratios[T] = d.ttft_s / s.ttft_s
        lines.append(
            f"  {T:>6,}  {s.ttft_s:>9.4f}  {d.ttft_s:>9.3f}  {ratios[T]:>9.1f}x  "
            f"{d.ttft_min_s / s.ttft_max_s:>12.1f}x"
        )
    T = plan.ttft_T_check
    checks = [
        Check(
            f"time to first token, sdpa / state at T={T:,}",
            f"{ratios[T]:.1f}x" if T in ratios else "not measured",
            ">= 100x",
            T in ratios and ratios[T] >= 100,
        )
    ]
    ordered = [ratios[t] for t in sorted(ratios)]
    grows = len(ordered) > 1 and all(b > a for a, b in zip(ordered, ordered[1:], strict=False))
    shown = ", ".join(f"{r:.1f}x" for r in ordered)
    checks.append(Check("the ratio grows with T", shown, "increasing", grows))
    return checks, lines


def decode_checks(rows: Sequence[Row], plan: Plan) -> tuple[list[Check], list[str]]:
    by = {key: rows_of(rows, key) for key in DECODE_MODES}
    present = [k for k in DECODE_MODES if by[k]]
    lines = [
        "decode tokens/s (median over rounds; min..max):",
        "  " + f"{'T':>6}  " + "  ".join(f"{k:>22}" for k in present),
    ]
    for T in plan.decode_T:
        cells = []
        for key in present:
            r = by[key].get(T)
            cells.append(
                f"{r.decode_tok_s:>8.1f} ({r.decode_min_tok_s:.1f}..{r.decode_max_tok_s:.1f})"
                if r and r.decode_tok_s
                else "-"
            )
        lines.append("  " + f"{T:>6,}  " + "  ".join(f"{c:>22}" for c in cells))
    checks = []
    for T in plan.decode_T:
        inattn, dense = by["inattn/kvcache"].get(T), by["dense/kvcache"].get(T)
        if inattn is None or dense is None:
            checks.append(Check(f"decode inattn kv / dense kv at T={T:,}", "n/a", ">= 0.9", False))
            continue
        ratio = inattn.decode_tok_s / dense.decode_tok_s
        worst = inattn.decode_min_tok_s / dense.decode_max_tok_s
        checks.append(
            Check(
                f"decode tok/s, InAttention kvcache / dense kvcache at T={T:,}",
                f"{ratio:.3f}x (worst pairing {worst:.3f}x)",
                ">= 0.9x",
                ratio >= 0.9,
            )
        )
    lines += ["", *peer_lines(by, plan)]
    return checks, lines


def peer_lines(by: dict[str, dict[int, Row]], plan: Plan) -> list[str]:
    """Where the outside peer and InAttention's state cache stand against dense kvcache."""
    L, H, d = plan.n_layer, plan.n_head, plan.d_model
    lines = ["against dense kvcache (tok/s ratio of medians):"]
    for T in plan.decode_T:
        dense = by["dense/kvcache"].get(T)
        if dense is None:
            continue
        parts = []
        for key in ("hf/kvcache", "inattn/state"):
            r = by[key].get(T) if by.get(key) else None
            if r is not None and r.decode_tok_s:
                parts.append(f"{key} {r.decode_tok_s / dense.decode_tok_s:.3f}x")
        lines.append(f"  T={T:,}: " + ", ".join(parts))
    lines += [
        "",
        "cache=state keeps one d-wide row per token (T*d numbers) where a K/V cache keeps",
        f"2L rows per token ({2 * L}x more at this shape). It pays in compute: with the",
        "projections absorbed, every head scores and mixes the d-wide rows of S instead of its",
        "own head_dim-wide keys and values, so attention per decoded token costs ~2*L*H*T*d",
        f"multiply-adds ({2 * L * H * d:,}*T here) against ~2*L*T*d for a K/V cache",
        f"({2 * L * d:,}*T): H = {H} times more. At short T the weights' cost dominates and the",
        "two are close; as T grows the state path falls behind, towards that factor. It is the",
        "mode for when memory, not speed, is the limit.",
    ]
    return lines


# ----------------------------------------------------------------------------- the run


def run_part(part: str, plan: Plan, args: argparse.Namespace, command: str) -> list[str]:
    spec = spec_of(plan, part, args)
    folder = args.out_dir / f"{part}_{plan.size}_{spec.device}_{spec.dtype}"
    print(f"{part}: {len(spec.modes)} modes x T = {spec.context_lengths}", file=sys.stderr)
    result = run_bench(spec, folder, wandb=None, progress=not args.no_progress, command=command)
    if part == "memory":
        checks, detail = memory_checks(result.rows, result.fits, plan)
    elif part == "ttft":
        checks, detail = ttft_checks(result.rows, plan)
    else:
        checks, detail = decode_checks(result.rows, plan)
    title = f"== {part}: {spec.dtype}, device={spec.device}, written to {folder}"
    return [title, "", result.table, "", *detail, "", "targets:", *(c.line() for c in checks)]


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],  # what each part checks, and example commands
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma list of {list(PARTS)}")
    p.add_argument(
        "--quick",
        action="store_true",
        help="nano size, short contexts: every path in seconds",
    )
    p.add_argument("--rounds", type=int, default=5, help="timed rounds per mode and T")
    p.add_argument("--decode-steps", type=int, default=16, help="tokens decoded per round")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads for timed parts")
    p.add_argument("--out-dir", type=Path, help="where the grids' folders go (default: a temp dir)")
    p.add_argument("--out", type=Path, help="also write the report to this file")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    args.parts = [s.strip() for s in args.parts.split(",") if s.strip()]
    unknown = [s for s in args.parts if s not in PARTS]
    if unknown or not args.parts:
        p.error(f"--parts: unknown {unknown}; choose from {list(PARTS)}")
    if min(args.rounds, args.decode_steps, args.threads) < 1:
        p.error("--rounds, --decode-steps and --threads must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.out_dir is None:
        args.out_dir = Path(tempfile.mkdtemp(prefix="inference_targets_"))
    command = f"python benchmarks/inference_targets.py {shlex.join(argv)}".rstrip()
    plan = PLANS["quick" if args.quick else "full"]
    run = BenchmarkRun()
    sections = ["\n".join(run_part(part, plan, args, command)) for part in args.parts]
    head = run.header(
        f"Inference targets: {plan.size} shape (n_layer={plan.n_layer} n_head={plan.n_head} "
        f"d_model={plan.d_model} vocab={plan.vocab}), batch 1",
        command,
        threads=f"{args.threads} torch threads for the timed parts",
        rounds=f"{args.rounds} interleaved rounds, {args.decode_steps} decode steps per round",
    )
    report = "\n\n".join([head, *sections]) + "\n"
    summary = [ln for ln in report.splitlines() if ln.startswith(("  PASS", "  MISS"))]
    report += "\nsummary: " + f"{sum('PASS' in s for s in summary)}/{len(summary)} targets met\n"
    run.emit(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
