"""Dtype names: one parser (inattn.units) for every command line, config and benchmark."""

from __future__ import annotations

import pytest
import torch

from inattn.bench.spec import BenchSpec
from inattn.errors import ConfigError
from inattn.units import DTYPES, dtype_name, parse_dtype

TORCH = {
    "fp32": torch.float32,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
    "fp64": torch.float64,
}


@pytest.mark.parametrize("short", list(TORCH))
def test_short_names_and_torch_synonyms(short):
    long = str(TORCH[short]).removeprefix("torch.")
    assert parse_dtype(short) is parse_dtype(long) is TORCH[short]
    assert dtype_name(short) == dtype_name(long) == short
    assert DTYPES[short] == long


@pytest.mark.parametrize("bad", ["fp8", "float", "", None, 32, True])
def test_unknown_dtype_names_the_field_and_the_choices(bad):
    with pytest.raises(ConfigError) as err:
        parse_dtype(bad, field="bench.dtype")
    assert err.value.field == "bench.dtype"
    assert "('fp32', 'bf16', 'fp16', 'fp64')" in str(err.value)


def test_choices_narrow_the_names():
    assert dtype_name("bfloat16", choices=("fp32", "bf16")) == "bf16"
    with pytest.raises(ConfigError, match=r"choose one of \('fp32', 'bf16'\)"):
        dtype_name("fp64", choices=("fp32", "bf16"))


def test_bench_spec_keeps_the_short_name():
    shape = {"n_layer": 2, "n_head": 2, "d_model": 16}
    spec = BenchSpec(sizes={"x": shape}, modes=["dense/sdpa"], dtype="bfloat16")
    assert spec.dtype == "bf16" and spec.torch_dtype is torch.bfloat16
