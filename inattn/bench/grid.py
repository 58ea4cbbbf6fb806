"""Run a benchmark grid (modes x sizes x context lengths) and return one row per point.

Memory: every point is measured by the live-storage tracker (`inattn.memory`): on real tensors
(cpu, cuda, where the CUDA allocator's peak is read too) or on fake ones (`meta`: nothing is
allocated, so paper-scale shapes run anywhere). Speed: time to first token (prefill to the
next-token logits) and greedy decode tokens/s, the modes interleaved round by round and the
median over rounds reported, so a drifting machine load hits every mode alike.

On a real device a point whose memory would pass `memory_limit` is skipped with a note in its
row, never attempted: its peak is first measured on fake tensors, which costs no memory and gives
the number the real run would track.
"""

from __future__ import annotations

import dataclasses
import gc
import multiprocessing
import statistics
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

from inattn.bench.measure import memory_point, random_tokens, time_decode, time_prefill
from inattn.bench.runners import HFRunner, ModeRunner, Runner, build_hf_gpt2
from inattn.bench.spec import HF_KEY, BenchSpec, split_key
from inattn.inference.full import RECOMPUTE  # modes that rerun the whole context per token
from inattn.memory import fake_module
from inattn.model import GPT
from inattn.units import human_bytes


@dataclass
class Row:
    """One grid point. Memory fields are filled by the memory benchmark, timings by speed."""

    size: str
    key: str  # variant/mode
    arch: str  # the variant: dense, gqa, mqa, cla, inattn (or hf, the GPT-2 peer)
    mode: str
    context: int
    device: str
    dtype: str
    position: str
    params: int
    status: str = "ok"  # ok | skipped
    note: str = ""
    weight_bytes: int | None = None
    peak_bytes: int | None = None  # tracked, weights included
    activation_bytes: int | None = None  # peak - weights
    cuda_peak_bytes: int | None = None  # CUDA allocator, net of what was live before
    estimated_peak_bytes: int | None = None  # fake-tensor measurement taken before a real run
    state_bytes: int | None = None  # the cache carried to the next token
    state_bytes_per_token: float | None = None
    ttft_s: float | None = None  # median over rounds
    ttft_min_s: float | None = None
    ttft_max_s: float | None = None
    decode_tok_s: float | None = None  # median over rounds
    decode_min_tok_s: float | None = None
    decode_max_tok_s: float | None = None
    repeats: int | None = None
    decode_steps: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


COLUMNS = [f.name for f in dataclasses.fields(Row)]


class Models:
    """The models of one size, built on first use: real ones on the device, fake ones on cpu.

    Keyed by variant (a mode key's first part: dense, gqa, mqa, cla, inattn, or hf).
    """

    def __init__(self, spec: BenchSpec, size: str):
        self.spec, self.size = spec, size
        self._real: dict[str, Any] = {}
        self._fake: dict[str, GPT] = {}

    def fake(self, arch: str) -> GPT:
        """Shapes only, on cpu: meta measurements and the estimates taken before real runs."""
        if arch not in self._fake:
            cfg = self.spec.gpt_config(self.size, arch)
            self._fake[arch] = fake_module(lambda: GPT(cfg), dtype=self.spec.torch_dtype).eval()
        return self._fake[arch]

    def real(self, arch: str) -> Any:
        if arch not in self._real:
            if arch == "hf":
                self._real[arch] = build_hf_gpt2(self.real("dense"))
            else:
                torch.manual_seed(self.spec.seed)
                model = GPT(self.spec.gpt_config(self.size, arch))
                device = torch.device(self.spec.device)
                self._real[arch] = model.to(device=device, dtype=self.spec.torch_dtype).eval()
        return self._real[arch]

    def params(self, arch: str) -> int:
        """Parameter count (position table included); the GPT-2 peer has the dense model's."""
        return self.fake("dense" if arch == "hf" else arch).num_params()

    def measured(self, arch: str) -> Any:
        return self.fake(arch) if self.spec.device == "meta" else self.real(arch)

    def runner(self, key: str) -> Runner:
        arch, mode = split_key(key)
        if key == HF_KEY:
            return HFRunner(self.real("hf"))
        return ModeRunner(self.real(arch), mode, self.spec.chunk, key)


def base_row(spec: BenchSpec, models: Models, key: str, T: int) -> Row:
    arch, mode = split_key(key)
    position = spec.model.get("position", "learned")
    return Row(
        models.size, key, arch, mode, T, spec.device, spec.dtype, position, models.params(arch)
    )


def over_limit(spec: BenchSpec, models: Models, key: str, T: int, row: Row) -> bool:
    """On a real device: measure on fake tensors first; note and skip a point past the limit."""
    if spec.device == "meta" or spec.memory_limit is None:
        return False
    arch, mode = split_key(key)
    if arch == "hf":  # same shapes as our dense K/V cache path: its estimate stands in
        arch, mode = "dense", "kvcache"
    estimate = memory_point(models.fake(arch), T, mode, "meta", spec.chunk, spec.seed).peak_bytes
    row.estimated_peak_bytes = estimate
    if estimate <= spec.memory_limit:
        return False
    row.status = "skipped"
    row.note = (
        f"estimated peak {human_bytes(estimate)} > memory_limit {human_bytes(spec.memory_limit)}"
    )
    return True


@contextmanager
def progress_bar(total: int, desc: str, enabled: bool) -> Iterator[tqdm]:
    bar = tqdm(total=total, desc=desc, unit="pt", disable=not enabled, dynamic_ncols=True)
    try:
        yield bar
    finally:
        bar.close()


# ----------------------------------------------------------------------------- memory


def run_memory(spec: BenchSpec, progress: bool = True) -> list[Row]:
    """Every (size, mode, T) point, in that order; in `spec.workers` processes on fake tensors."""
    points = [(s, k, T) for s in spec.sizes for k in spec.modes for T in spec.context_lengths]
    workers = min(spec.workers, len(points))
    with progress_bar(len(points), "memory", progress) as bar:
        if workers > 1:
            return parallel_memory(spec, points, workers, bar)
        rows: list[Row] = []
        for size in spec.sizes:
            models = Models(spec, size)
            for key in spec.modes:
                for T in spec.context_lengths:
                    bar.set_postfix_str(f"{size} {key} T={T}")
                    rows.append(memory_row(spec, models, key, T))
                    bar.update()
            del models
            gc.collect()
    return rows


def memory_row(spec: BenchSpec, models: Models, key: str, T: int) -> Row:
    """One memory point, measured (or skipped past `memory_limit` on a real device)."""
    row = base_row(spec, models, key, T)
    if not over_limit(spec, models, key, T, row):
        arch, mode = split_key(key)
        m = memory_point(models.measured(arch), T, mode, spec.device, spec.chunk, spec.seed)
        row.weight_bytes, row.peak_bytes = m.weight_bytes, m.peak_bytes
        row.activation_bytes = m.peak_bytes - m.weight_bytes
        row.cuda_peak_bytes, row.state_bytes = m.cuda_peak_bytes, m.state_bytes
        row.state_bytes_per_token = m.state_bytes / T
    return row


def parallel_memory(
    spec: BenchSpec, points: list[tuple[str, str, int]], workers: int, bar: tqdm
) -> list[Row]:
    """The points in `workers` processes (fake tensors only: nothing real is shared or timed).

    On fake tensors a point costs Python dispatch per op, nothing else, so processes scale with
    the cores. The longest contexts start first, so no worker is left with the slowest point at
    the end; rows come back in the serial order, and are the same numbers as a serial run.
    """
    order = sorted(range(len(points)), key=lambda i: -points[i][2])
    rows: list[Row | None] = [None] * len(points)
    context = multiprocessing.get_context("spawn")  # no forked torch state in the workers
    with ProcessPoolExecutor(workers, context, _start_worker, (spec.to_dict(),)) as pool:
        futures = {pool.submit(_worker_row, *points[i]): i for i in order}
        for future in as_completed(futures):
            i = futures[future]
            rows[i] = future.result()
            size, key, T = points[i]
            bar.set_postfix_str(f"{size} {key} T={T}")
            bar.update()
    return [row for row in rows if row is not None]


_worker: dict[str, Any] = {}  # a worker process's spec and the models it has built


def _start_worker(spec: dict[str, Any]) -> None:
    torch.set_num_threads(1)  # one process per core
    _worker["spec"], _worker["models"] = BenchSpec(**spec), {}


def _worker_row(size: str, key: str, T: int) -> Row:
    spec, models = _worker["spec"], _worker["models"]
    if size not in models:
        models[size] = Models(spec, size)
    return memory_row(spec, models[size], key, T)


# ----------------------------------------------------------------------------- speed


def run_speed(spec: BenchSpec, progress: bool = True) -> list[Row]:
    rows: list[Row] = []
    per_T = spec.warmup + spec.repeats * 2
    total = len(spec.sizes) * len(spec.context_lengths) * len(spec.modes) * per_T
    with progress_bar(total, "speed", progress) as bar:
        for size in spec.sizes:
            models = Models(spec, size)
            for n, T in enumerate(spec.context_lengths):
                rows += speed_at(spec, models, T, warm=n > 0, bar=bar)
            del models
            gc.collect()
    return rows


def speed_at(spec: BenchSpec, models: Models, T: int, warm: bool, bar: tqdm) -> list[Row]:
    """Every mode at one context length: warm-up, interleaved prefill rounds, decode rounds.

    Past `spec.ttft_max_context` the prefill is not timed: each mode decodes from a cache filled
    with random keys and values (`Runner.filled_cache`), which costs the same per step.
    """
    rows = {key: base_row(spec, models, key, T) for key in spec.modes}
    keys = []
    for key in spec.modes:
        if over_limit(spec, models, key, T, rows[key]):
            bar.update(spec.warmup + 2 * spec.repeats)
        else:
            keys.append(key)
    runners = {key: models.runner(key) for key in keys}
    vocab = spec.gpt_config(models.size, "dense").vocab_size
    idx = random_tokens(vocab, T, torch.device(spec.device), spec.seed)
    timed = spec.ttft_max_context is None or T <= spec.ttft_max_context
    label = f"{models.size} T={T}"
    if timed:
        ttft, outputs = time_prefills(spec, runners, idx, warm, bar, label)
    else:
        ttft, outputs = {}, {}
        for key in keys:
            bar.set_postfix_str(f"{label} filling {key}")
            capacity = T + spec.decode_steps
            outputs[key] = (idx[:, -1], runners[key].filled_cache(T, capacity))
            bar.update(spec.warmup + spec.repeats)
    decoded = [k for k in keys if spec.recompute_decode or split_key(k)[1] not in RECOMPUTE]
    rates = time_decodes(spec, {k: runners[k] for k in decoded}, outputs, T, bar, label)
    bar.update(spec.repeats * (len(keys) - len(decoded)))
    for key in keys:
        fill_speed(spec, rows[key], ttft.get(key), rates.get(key))
    outputs.clear()
    return list(rows.values())


def time_prefills(
    spec: BenchSpec,
    runners: dict[str, Runner],
    idx: torch.Tensor,
    warm: bool,
    bar: tqdm,
    label: str,
) -> tuple[dict[str, list[float]], dict[str, tuple[torch.Tensor, Any]]]:
    """Seconds to first token per mode and round; and each mode's (first decode token, cache)."""
    capacity = idx.shape[1] + spec.decode_steps
    for runner in runners.values():  # warm-up: first-call costs are not inference time
        for _ in range(0 if warm else spec.warmup):
            runner.prefill(idx, capacity)
        bar.update(spec.warmup)
    ttft: dict[str, list[float]] = {k: [] for k in runners}
    outputs: dict[str, tuple[torch.Tensor, Any]] = {}
    for r in range(spec.repeats):
        for key in rotated(list(runners), r):
            bar.set_postfix_str(f"{label} prefill {key}")
            seconds, (logits, cache) = time_prefill(runners[key], idx, capacity)
            ttft[key].append(seconds)
            outputs[key] = (logits.argmax(-1), cache)
            bar.update()
    return ttft, outputs


def time_decodes(
    spec: BenchSpec,
    runners: dict[str, Runner],
    outputs: dict[str, tuple[torch.Tensor, Any]],
    T: int,
    bar: tqdm,
    label: str,
) -> dict[str, list[float]]:
    """Decode tokens/s per mode and round, each round from the cache rewound to T positions."""
    rates: dict[str, list[float]] = {k: [] for k in runners}
    for r in range(spec.repeats):
        for key in rotated(list(runners), r):
            bar.set_postfix_str(f"{label} decode {key}")
            first, cache = outputs[key]
            rates[key].append(time_decode(runners[key], cache, T, first, spec.decode_steps))
            bar.update()
    return rates


def fill_speed(
    spec: BenchSpec, row: Row, ttft: list[float] | None, rates: list[float] | None
) -> None:
    """A row's timing fields from its rounds, and notes for what was not timed."""
    row.repeats, row.decode_steps = spec.repeats, spec.decode_steps
    notes = []
    if ttft is not None:
        row.ttft_s, row.ttft_min_s, row.ttft_max_s = summary(ttft)
    else:
        notes.append(f"no prefill timed (ttft_max_context={spec.ttft_max_context})")
        if rates is not None:
            notes.append("decoded from a cache of random keys/values")
    if rates is not None:
        row.decode_tok_s, row.decode_min_tok_s, row.decode_max_tok_s = summary(rates)
    else:
        notes.append("reruns the whole context per token: decode time ~ time to first token")
    row.note = "; ".join(notes)


def rotated(keys: list[str], r: int) -> list[str]:
    """The round-r order: each mode takes each place in turn (no mode always runs first)."""
    if not keys:
        return keys
    r %= len(keys)
    return keys[r:] + keys[:r]


def summary(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def run_grid(spec: BenchSpec, progress: bool = True) -> list[Row]:
    """All points of `spec`, in the order sizes, modes, contexts (memory) or sizes, contexts."""
    return (run_memory if spec.measure == "memory" else run_speed)(spec, progress)
