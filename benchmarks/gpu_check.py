"""GPU check: the live-storage memory tracker against the CUDA allocator, and inference speed.

What it checks, on one GPU (spec sections 2-3), in bf16 at the gpt2-small shape (conf/size: 12
layers, 12 heads, d=768; vocab 50257), batch 1:

memory  every inference mode of both architectures (dense/{naive,sdpa,kvcache},
        inattn/{naive,sdpa,kvcache,state}) at T = 1024, 4096, 16384. Each point is measured once
        by `inattn.bench.run_bench(measure=memory, device=cuda)`, which reads the tracker's peak
        and the CUDA allocator's peak of the same call. PASS when they agree within 5% of the
        CUDA number (see `agreement` for what exactly is compared).
speed   time to first token and greedy decode tokens/s for dense/sdpa, dense/kvcache,
        inattn/state, inattn/kvcache and hf/kvcache (the Hugging Face GPT-2 peer, when
        `transformers` is importable and a tiny probe of it runs) at T = 1024, 8192, 32768,
        131072, 3 interleaved rounds.
        Points whose fake-tensor estimate passes a 40 GiB memory limit are skipped with a note.

Every grid runs at one T in a folder of its own, so a failure at one T (say, out of memory)
costs that T only: it is written to the folder's error.txt and the run goes on. About 3-4
minutes on one H100 (the estimate is worked out beside `FULL`).

Output, under --out (default experiments/gpu/<card-name-slug>):
    memory_T<T>/, speed_T<T>/   run_bench's results.csv, results.json and PNG per grid
    summary.txt                 device, torch, git revision, command, wall time, the agreement
                                table and the speed table (rewritten after every grid)

    python benchmarks/gpu_check.py                          # the check, on a CUDA machine
    python benchmarks/gpu_check.py --device cpu --quick     # every code path in seconds

Exit code: 0 when every agreement check passes (on cpu there is no allocator reading: n/a, not a
failure), 1 when one fails or a grid raised, 2 on bad input (e.g. --device cuda without CUDA).
"""

from __future__ import annotations

import argparse
import gc
import re
import shlex
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from inattn.bench import HF_KEY, BenchSpec, Row, memory_fits, run_bench
from inattn.bench.results import table_text
from inattn.bench.runners import HFRunner, build_hf_gpt2, hf_available
from inattn.inference import modes_for
from inattn.model import GPT, GPTConfig
from inattn.reporting.provenance import field_lines, git_revision, machine
from inattn.reporting.text_table import aligned
from inattn.sizes import NamedSize
from inattn.units import MiB, parse_dtype

ROOT = Path(__file__).resolve().parent.parent
TOLERANCE = 0.05  # |tracker - CUDA| / CUDA

EXIT_OK, EXIT_FAIL, EXIT_BAD_INPUT = 0, 1, 2
MEMORY_MODES = [f"{arch}/{mode}" for arch in ("dense", "inattn") for mode in modes_for(arch)]
SPEED_MODES = ["dense/sdpa", "dense/kvcache", "inattn/state", "inattn/kvcache"]


@dataclass(frozen=True)
class Plan(NamedSize):
    """A model size of conf/size and the contexts, rounds and limit of both parts."""

    size: str
    vocab: int
    memory_T: tuple[int, ...]
    speed_T: tuple[int, ...]
    repeats: int
    decode_steps: int
    chunk: int  # keys per online-softmax step / positions per prefill chunk
    memory_limit: str
    dtype: str = "bf16"

    def spec(self, measure: str, modes: Sequence[str], T: int, device: str) -> BenchSpec:
        """One grid at one context length."""
        return BenchSpec(
            sizes={self.size: self.shape},
            modes=list(modes),
            context_lengths=[T],
            measure=measure,
            device=device,
            dtype=self.dtype,
            memory_limit=self.memory_limit,
            model={"vocab_size": self.vocab},
            chunk=self.chunk,
            repeats=self.repeats,
            warmup=1,
            decode_steps=self.decode_steps,
        )

    def describe(self) -> str:
        return (
            f"{self.size}: n_layer={self.n_layer} n_head={self.n_head} d_model={self.d_model} "
            f"vocab={self.vocab}, {self.dtype}, batch 1, chunk={self.chunk}; "
            f"memory T={list(self.memory_T)}; speed T={list(self.speed_T)}, rounds={self.repeats}, "
            f"decode_steps={self.decode_steps}; memory_limit={self.memory_limit}"
        )


# Cost on one H100, bf16 (~1e15 flop/s dense, ~3 TB/s):
# - memory, 7 modes x 3 T: every point is first measured on fake tensors on the CPU to apply the
#   limit (~15 s in all at 16384, most of it the chunked kvcache paths), then run twice on the
#   GPU (warm-up, then measured under the tracker). naive at 16384 holds ~19 GiB of 12 x T^2
#   scores, well under the 40 GiB limit, and moves ~0.3 TB: a fraction of a second. ~1 min.
# - speed at 131072 dominates. dense/sdpa prefill (flash attention): 12 layers x 131072^2 x 768
#   x 2 flop x 2 (QK^T, PV) / 2 (causal) ~ 3e14 flop, ~1 s. dense/kvcache prefill runs 128 chunks
#   of 1024 queries over the cache so far with an explicit mask, which flash attention does not
#   take: the memory-efficient kernel (or, at worst, the math path: 3 GiB of fp32 scores per
#   layer and chunk on average, ~10 TB of traffic) does the same ~3e14 flop in ~3-6 s. The HF
#   peer's prefill is a flash-attention full forward, ~1 s. With the warm-up, 4 prefills per mode:
#   ~30 s. No cap on T is needed. Decoding: a K/V cache step reads 4.5 GiB (~2 ms);
#   inattn/state walks 128 chunks x 12 layers in Python, ~0.2 s per token, 28 tokens ~6 s.
#   The fake-tensor estimates at 131072 take ~60 s of CPU (dense/kvcache twice: for itself and
#   for the HF peer). Model builds ~5 s per T. Smaller T cost a fraction of this.
# - Fixed costs: inattn.bench calls gc.collect() around every point (~0.2 s each with torch
#   loaded; ~80 calls, ~20 s), four PNGs, imports and CUDA start-up (~20 s).
# In all ~3-4 minutes, well inside 8; the quick plan takes ~20 s on two CPU cores.
FULL = Plan(
    "gpt2-small",
    50257,
    memory_T=(1024, 4096, 16384),
    speed_T=(1024, 8192, 32768, 131072),
    repeats=3,
    decode_steps=8,
    chunk=1024,
    memory_limit="40GiB",
)
# Every code path in seconds on a CPU (the smallest conf size); chunk < T so the chunked loops
# run more than once.
QUICK = Plan(
    "nano",
    100,
    memory_T=(16, 64),
    speed_T=(16, 64),
    repeats=1,
    decode_steps=2,
    chunk=16,
    memory_limit="1GiB",
)


def hf_peer_problem(device: str, dtype: str) -> str | None:
    """None when the Hugging Face peer runs here, else why it is left out.

    Probed on a tiny model first: a peer that breaks (say, a transformers version whose API
    moved) then costs its own rows, not every speed grid it would share with our modes.
    """
    if not hf_available():
        return "transformers is not installed"
    try:
        cfg = GPTConfig(
            arch="dense", n_layer=1, n_head=2, d_model=32, vocab_size=100, context_length=8
        )
        model = GPT(cfg).to(device=device, dtype=parse_dtype(dtype)).eval()
        runner = HFRunner(build_hf_gpt2(model))
        logits, cache = runner.prefill(torch.zeros(1, 4, dtype=torch.long, device=device), 6)
        runner.decode(logits.argmax(-1), cache)
        runner.rewind(cache, 4)
    except Exception as err:  # whatever breaks, the other modes are still timed
        return f"{type(err).__name__}: {first_line(err)}"
    return None


# ----------------------------------------------------------------------------- agreement


def verdict_of(row: Row, tolerance: float = TOLERANCE) -> str:
    """PASS / FAIL for a measured point; SKIP or n/a where there is nothing to compare."""
    if row.status != "ok":
        return f"SKIP ({row.note})"
    if row.cuda_peak_bytes is None:
        if row.device == "cuda":
            return "FAIL (no CUDA allocator reading)"
        return f"n/a (no CUDA allocator on {row.device})"
    cuda = row.cuda_peak_bytes
    return "PASS" if cuda > 0 and abs(row.peak_bytes - cuda) <= tolerance * cuda else "FAIL"


def ratio(a: int | None, b: int | None) -> str:
    return "" if a is None or b is None or b <= 0 else f"{a / b:.4f}"


def mib(n: int | None) -> str:
    return "" if n is None else f"{n / MiB:,.1f}"


def agreement(rows: Sequence[Row], tolerance: float = TOLERANCE) -> tuple[list[str], bool]:
    """The agreement table of memory rows, and whether every compared point passed.

    Compared: the tracker's peak (`Row.peak_bytes`: weights, context token ids and everything
    the call made, each storage once) against the allocator's `max_memory_allocated` net of the
    device bytes live before the call that the tracker does not know (`Row.cuda_peak_bytes`,
    see `inattn.memory.measure_peak`): both count the weights and the ids once and nothing else
    that was live before. The ratio net of the weights (activations and cache only) is shown
    beside for information; at short T the weights dominate the gated ratio.
    No rows, or a cuda row without its allocator reading, fails.
    """
    head = ["mode", "T", "tracker MiB", "CUDA MiB", "ratio", "net of weights", "verdict"]
    body, verdicts = [], []
    for r in rows:
        verdict = verdict_of(r, tolerance)
        verdicts.append(verdict)
        w = r.weight_bytes or 0
        net = (
            (r.peak_bytes - w, r.cuda_peak_bytes - w)
            if r.peak_bytes is not None and r.cuda_peak_bytes is not None
            else (None, None)
        )
        body.append(
            [
                r.key,
                f"{r.context:,}",
                mib(r.peak_bytes),
                mib(r.cuda_peak_bytes),
                ratio(r.peak_bytes, r.cuda_peak_bytes),
                ratio(*net),
                verdict,
            ]
        )
    if not rows:
        return ["no memory point was measured"], False
    counts = {v: sum(x.startswith(v) for x in verdicts) for v in ("PASS", "FAIL", "SKIP", "n/a")}
    compared = counts["PASS"] + counts["FAIL"]
    lines = aligned(head, body, first_left=True)
    lines.append(
        f"{counts['PASS']}/{compared} compared points within {tolerance:.0%} of the CUDA "
        f"allocator's peak; {counts['SKIP']} skipped; {counts['n/a']} without an allocator reading"
    )
    return lines, counts["FAIL"] == 0


# ----------------------------------------------------------------------------- the grids


@dataclass
class Part:
    """One grid (one measure at one T): its rows, or the error that stopped it."""

    measure: str
    T: int
    folder: Path
    rows: list[Row]
    seconds: float
    error: str | None = None


def first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def release_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def run_part(spec: BenchSpec, folder: Path, command: str, progress: bool) -> Part:
    """run_bench into `folder`; an exception is kept in folder/error.txt instead of raised."""
    T = spec.context_lengths[0]
    print(f"{spec.measure} T={T:,}: {', '.join(spec.modes)}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    try:
        rows = run_bench(spec, folder, wandb=None, progress=progress, command=command).rows
        error = None
    except Exception as err:  # out of memory or a kernel error at one T must not cost the rest
        traceback.print_exc()
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "error.txt").write_text(traceback.format_exc())
        rows, error = [], f"{type(err).__name__}: {first_line(err)}"
    release_memory()
    return Part(spec.measure, T, folder, rows, time.perf_counter() - start, error)


def rows_of(parts: Sequence[Part], measure: str) -> list[Row]:
    return [r for p in parts if p.measure == measure for r in p.rows]


# ----------------------------------------------------------------------------- the report


def slug(name: str) -> str:
    """`NVIDIA H100 80GB HBM3` -> `nvidia-h100-80gb-hbm3`: a folder name."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "device"


def device_name(device: str) -> str:
    return torch.cuda.get_device_name() if device == "cuda" else device


def summary(
    header: dict[str, str], parts: Sequence[Part], planned: int, seconds: float
) -> tuple[str, bool]:
    """summary.txt's text, and whether the run passed (agreement held and no grid raised)."""
    memory = rows_of(parts, "memory")
    agree, agreed = agreement(memory)
    errors = [f"  {p.measure} T={p.T:,} ({p.folder.name}): {p.error}" for p in parts if p.error]
    done = len(parts) == planned
    passed = done and agreed and not errors
    status = "done" if done else f"running: {len(parts)} of {planned} grids done"
    fields = {**header, "wall time": f"{seconds / 60:.1f} min", "status": status}
    lines = field_lines(fields)
    lines += ["", "== memory: tracker peak vs CUDA allocator peak", "", *agree]
    if memory:
        lines += ["", table_text(memory, memory_fits(memory, 0.5))]
    speed = rows_of(parts, "speed")
    lines += ["", "== speed: time to first token and decode tokens/s", ""]
    lines += [table_text(speed) if speed else "no speed point was measured"]
    if errors:
        lines += ["", "== errors (traceback in each folder's error.txt)", *errors]
    verdict = "PASS" if passed else ("FAIL" if done else "INCOMPLETE")
    lines += ["", f"verdict: {verdict}"]
    return "\n".join(lines) + "\n", passed


# ----------------------------------------------------------------------------- main


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", type=Path, help="output folder (default experiments/gpu/<card>)")
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--quick", action="store_true", help="nano size, short contexts, 1 round")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda: no CUDA device is available", file=sys.stderr)
        return EXIT_BAD_INPUT
    plan = QUICK if args.quick else FULL
    name = device_name(args.device)
    out = args.out or ROOT / "experiments" / "gpu" / slug(name)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        print(f"error: --out {out}: {err.strerror or first_line(err)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    command = shlex.join(["python", "benchmarks/gpu_check.py", *argv])
    header = {
        "device": name,
        "torch": torch.__version__,
        "git revision": git_revision(),
        "command": command,
        "machine": machine(),
        "plan": plan.describe(),
    }
    peer = hf_peer_problem(args.device, plan.dtype)
    header["hf peer"] = f"{HF_KEY} timed" if peer is None else f"left out ({peer})"
    speed_modes = SPEED_MODES + ([HF_KEY] if peer is None else [])
    grids = [("memory", MEMORY_MODES, T) for T in plan.memory_T]
    grids += [("speed", speed_modes, T) for T in plan.speed_T]
    progress = sys.stderr.isatty()
    parts: list[Part] = []
    start = time.perf_counter()
    text, passed = summary(header, parts, len(grids), 0.0)
    (out / "summary.txt").write_text(text)
    for measure, modes, T in grids:
        spec = plan.spec(measure, modes, T, args.device)
        parts.append(run_part(spec, out / f"{measure}_T{T}", command, progress))
        text, passed = summary(header, parts, len(grids), time.perf_counter() - start)
        (out / "summary.txt").write_text(text)  # after every grid: a killed run leaves its part
    print(text, end="")
    print(f"written to {out}", file=sys.stderr)
    return EXIT_OK if passed else EXIT_FAIL


if __name__ == "__main__":
    sys.exit(main())
