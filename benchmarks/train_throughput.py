"""Training tokens/s of the dense and InAttention GPTs against Hugging Face's GPT-2, CPU, fp32.

All three models have the same shape (a size of conf/size) and the same parameters (learned
positions, tied embeddings, biases, no dropout); a check at start-up copies the dense weights into
the GPT-2 and asserts both compute the same logits, so the comparison is like for like. A training
step is the same for all: forward over every position, cross-entropy against random targets,
backward, AdamW step, zero_grad.

The machine may be shared, so the models run interleaved: each round times `steps` steps of every
model (the order rotates from round to round) and the table reports the median, min and max over
rounds. The ratios at the end are ratios of those medians, with the median of the per-round ratios
(each taken between runs a few seconds apart, so less exposed to drifting load) beside them.

    python benchmarks/train_throughput.py                       # both shapes, default rounds/steps
    python benchmarks/train_throughput.py --shapes tiny --rounds 9 --steps 4
    python benchmarks/train_throughput.py --out benchmarks/results/train_throughput.txt

Defaults per shape (used unless --rounds/--steps are given): tiny 7 rounds x 3 steps, gpt2-small
5 rounds x 1 step, one warm-up step per model. One gpt2-small step takes 10-25 s on 2 cores (more
when the machine is busy), so the default run takes about 4 minutes on a quiet machine and about
8 on a busy one; the three gpt2-small models with their AdamW states peak at about 10 GB of memory.
"""

from __future__ import annotations

import argparse
import gc
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from inattn.bench.runners import build_hf_gpt2
from inattn.model import GPT, GPTConfig
from inattn.reporting.provenance import BenchmarkRun
from inattn.sizes import size_shape

REPO = Path(__file__).resolve().parent.parent
HF = "hf-gpt2"
MODELS = (HF, "dense", "inattn")
# (numerator, denominator, target ratio): dense must match HF; InAttention must stay close to dense
TARGETS = (("dense", HF, 1.0), ("inattn", "dense", 0.95))


@dataclass(frozen=True)
class Plan:
    """A model size of conf/size, the batch it trains on, and its default rounds and steps."""

    size: str
    vocab: int
    context: int
    batch: int
    rounds: int  # default rounds for this shape
    steps: int  # default timed steps per model per round

    @property
    def tokens(self) -> int:
        return self.batch * self.context

    @property
    def shape(self) -> dict[str, int]:
        """{n_layer, n_head, d_model}, as conf/size/<size>.yaml gives them."""
        return size_shape(self.size)


PLANS = {
    plan.size: plan
    for plan in (
        Plan("tiny", 4096, 256, 16, rounds=7, steps=3),
        Plan("gpt2-small", 50257, 512, 4, rounds=5, steps=1),
    )
}

Logits = Callable[[torch.Tensor], torch.Tensor]


# ----------------------------------------------------------------------------- models


def build_ours(plan: Plan, arch: str) -> GPT:
    cfg = GPTConfig(
        arch=arch,
        vocab_size=plan.vocab,
        context_length=plan.context,
        **plan.shape,
        position="learned",
        tie_weights=True,
        bias=True,
        dropout=0.0,
    )
    return GPT(cfg)


def hf_logits(model: nn.Module) -> Logits:
    # no K/V cache: a training loop has no use for one
    return lambda idx: model(input_ids=idx, use_cache=False).logits


@torch.no_grad()
def check_same_function(plan: Plan) -> float:
    """Max |logit difference| between our dense GPT and GPT-2 holding the same weights."""
    ours = build_ours(plan, "dense").eval()
    hf = build_hf_gpt2(ours)  # GPT-2 holding our weights
    if ours.num_params() != sum(p.numel() for p in hf.parameters()):
        raise RuntimeError("our dense GPT and GPT-2 differ in parameter count")
    idx = torch.randint(0, plan.vocab, (1, min(64, plan.context)))
    diff = (ours(idx) - hf_logits(hf)(idx)).abs().max().item()
    if diff > 1e-4:
        raise RuntimeError(f"our dense GPT and GPT-2 disagree by {diff:.2e} on the same weights")
    return diff


# ----------------------------------------------------------------------------- timing


class Trainer:
    """One model, its AdamW, and the training step every model shares."""

    def __init__(self, model: nn.Module, logits: Logits):
        self.model = model.train()
        self.logits = logits
        self.params = sum(p.numel() for p in model.parameters())
        self.opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1)

    def step(self, idx: torch.Tensor, targets: torch.Tensor) -> float:
        logits = self.logits(idx)  # (B, T, vocab)
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        loss.backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        return loss.item()

    def timed(self, idx: torch.Tensor, targets: torch.Tensor, steps: int) -> float:
        """Tokens/s over `steps` consecutive steps."""
        gc.collect()
        start = time.perf_counter()
        for _ in range(steps):
            self.step(idx, targets)
        return steps * idx.numel() / (time.perf_counter() - start)


def build_trainers(plan: Plan) -> dict[str, Trainer]:
    torch.manual_seed(0)
    hf = build_hf_gpt2(build_ours(plan, "dense"))  # the init does not change the step's cost
    trainers = {HF: Trainer(hf, hf_logits(hf))}
    for arch in ("dense", "inattn"):
        model = build_ours(plan, arch)
        trainers[arch] = Trainer(model, model)
    return trainers


def measure(
    plan: Plan, rounds: int, steps: int, warmup: int
) -> tuple[dict[str, int], dict[str, list[float]]]:
    """Parameter counts, and tokens/s per model per round (interleaved, order rotated per round)."""
    trainers = build_trainers(plan)
    gen = torch.Generator().manual_seed(1)
    idx = torch.randint(0, plan.vocab, (plan.batch, plan.context), generator=gen)
    targets = torch.randint(0, plan.vocab, (plan.batch, plan.context), generator=gen)
    for trainer in trainers.values():
        for _ in range(warmup):
            trainer.step(idx, targets)
    rates: dict[str, list[float]] = {name: [] for name in MODELS}
    for r in range(rounds):
        order = MODELS[r % len(MODELS) :] + MODELS[: r % len(MODELS)]
        for name in order:
            rates[name].append(trainers[name].timed(idx, targets, steps))
        line = "  ".join(f"{n} {rates[n][-1]:,.0f}" for n in MODELS)
        print(f"  round {r + 1}/{rounds}: {line} tok/s", file=sys.stderr, flush=True)
    return {name: t.params for name, t in trainers.items()}, rates


# ----------------------------------------------------------------------------- report


def shape_line(plan: Plan, rounds: int, steps: int, warmup: int, diff: float) -> str:
    dims = plan.shape
    return (
        f"{plan.size}: n_layer={dims['n_layer']} n_head={dims['n_head']} d_model={dims['d_model']} "
        f"vocab={plan.vocab} context={plan.context} batch={plan.batch}; "
        f"{rounds} rounds x {steps} steps, {warmup} warm-up; "
        f"GPT-2 vs dense max |logit diff| on equal weights {diff:.1e}"
    )


def rounds_listing(results: dict[str, tuple[dict[str, int], dict[str, list[float]]]]) -> str:
    """Every round's tokens/s, so the spread behind each median can be read."""
    lines = ["tokens/s per round:"]
    for shape, (_, rates) in results.items():
        for name in MODELS:
            lines.append(f"  {name:<8} {shape:<11} " + " ".join(f"{r:,.0f}" for r in rates[name]))
    return "\n".join(lines)


def table(results: dict[str, tuple[dict[str, int], dict[str, list[float]]]]) -> str:
    head = f"{'model':<8} {'shape':<11} {'params':>12} {'tok/s median':>13} {'min':>9} {'max':>9}"
    lines = [head, "-" * len(head)]
    for shape, (params, rates) in results.items():
        for name in MODELS:
            r = rates[name]
            lines.append(
                f"{name:<8} {shape:<11} {params[name]:>12,} {statistics.median(r):>13,.0f} "
                f"{min(r):>9,.0f} {max(r):>9,.0f}"
            )
    return "\n".join(lines)


def ratios(results: dict[str, tuple[dict[str, int], dict[str, list[float]]]]) -> str:
    lines = ["ratios (of medians; median of per-round ratios in brackets):"]
    for shape, (_, rates) in results.items():
        for num, den, target in TARGETS:
            ratio = statistics.median(rates[num]) / statistics.median(rates[den])
            paired = statistics.median(a / b for a, b in zip(rates[num], rates[den], strict=True))
            verdict = "PASS" if ratio >= target else "MISS"
            lines.append(
                f"  {shape:<11} {num + '/' + den:<15} {ratio:.3f}x  ({paired:.3f}x)  "
                f"target >= {target:.2f}x  {verdict}"
            )
    return "\n".join(lines)


# ----------------------------------------------------------------------------- CLI


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--shapes", default="tiny,gpt2-small", help=f"comma list of conf sizes {list(PLANS)}"
    )
    p.add_argument("--rounds", type=int, help="rounds per shape (default: per shape)")
    p.add_argument("--steps", type=int, help="timed steps per model per round (default: per shape)")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps per model first")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    p.add_argument("--out", type=Path, help="also write the report to this file")
    args = p.parse_args(argv)
    args.shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    unknown = [s for s in args.shapes if s not in PLANS]
    if unknown or not args.shapes:
        p.error(f"--shapes: unknown {unknown}; choose from {list(PLANS)}")
    for name in ("rounds", "steps"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1")
    if args.warmup < 0 or args.threads < 1:
        p.error("--warmup must be >= 0 and --threads >= 1")
    return args


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    run = BenchmarkRun()
    results, notes = {}, []
    for name in args.shapes:
        plan = PLANS[name]
        rounds, steps = args.rounds or plan.rounds, args.steps or plan.steps
        diff = check_same_function(plan)
        print(f"{name}: {rounds} rounds x {steps} steps", file=sys.stderr, flush=True)
        results[name] = measure(plan, rounds, steps, args.warmup)
        notes.append(shape_line(plan, rounds, steps, args.warmup, diff))
    command = f"python benchmarks/train_throughput.py {shlex.join(argv)}".rstrip()
    import transformers

    head = run.header(
        "Training throughput: dense and InAttention GPT vs Hugging Face GPT2LMHeadModel (sdpa)",
        command,
        transformers=transformers.__version__,
        precision="fp32 on CPU",
    )
    parts = [head, "\n".join(notes), rounds_listing(results), table(results), ratios(results)]
    run.emit("\n\n".join(parts) + "\n", args.out)


if __name__ == "__main__":
    main()
