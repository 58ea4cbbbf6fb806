"""Inference benchmarks: memory and speed against context length, for every mode.

spec.py     what a grid measures (mode keys such as dense/naive, inattn/state; sizes; T)
runners.py  one prefill/decode interface over our modes and the Hugging Face GPT-2 peer
measure.py  one point: tracked peak memory, time to first token, decode tokens/s
grid.py     the grid, with the memory-limit skip and interleaved timing rounds
fit.py      scaling exponents of (peak - weights) against T
plots.py    the figures
results.py  results.csv / results.json, the text table, W&B
run.py      all of the above into one folder (what `inattn-bench` calls)

from inattn.bench import BenchSpec, run_bench
spec = BenchSpec(sizes={"gpt2-small": {"n_layer": 12, "n_head": 12, "d_model": 768}},
                 context_lengths=[1024, 4096, 16384], device="meta", dtype="bf16",
                 model={"vocab_size": 50257})
result = run_bench(spec, Path("out"))
print(result.table)
"""

from inattn.bench.fit import Fit, fit_exponent, memory_fits
from inattn.bench.grid import COLUMNS, Row, run_grid, run_memory, run_speed
from inattn.bench.run import BenchResult, run_bench
from inattn.bench.spec import DEFAULT_KEYS, HF_KEY, MODE_KEYS, BenchSpec, parse_limit, split_key

__all__ = [
    "COLUMNS",
    "DEFAULT_KEYS",
    "HF_KEY",
    "MODE_KEYS",
    "BenchResult",
    "BenchSpec",
    "Fit",
    "Row",
    "fit_exponent",
    "memory_fits",
    "parse_limit",
    "run_bench",
    "run_grid",
    "run_memory",
    "run_speed",
    "split_key",
]
