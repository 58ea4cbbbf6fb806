"""Equal-memory size selection: the largest size that fits by the tracker, clear errors."""

from __future__ import annotations

import pytest

from inattn.errors import ConfigError
from inattn.experiments.budget import inference_peak, largest_fitting
from inattn.model import GPT, GPTConfig
from inattn.units import CARDS, MiB, parse_budget

SHAPES = {"nano": (2, 2, 64), "micro": (3, 3, 96), "tiny": (4, 4, 128)}
T = 2048


def ladder(arch: str) -> dict[str, GPTConfig]:
    return {
        size: GPTConfig(arch=arch, n_layer=L, n_head=H, d_model=d, vocab_size=512, context_length=T)
        for size, (L, H, d) in SHAPES.items()
    }


def measure(arch: str, mode: str) -> tuple[dict[str, int], dict[str, int]]:
    cfgs = ladder(arch)
    params = {s: GPT(c).num_params() for s, c in cfgs.items()}
    return params, {s: inference_peak(c, T, mode) for s, c in cfgs.items()}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("12GiB", 12 * 2**30),
        ("512MiB", 512 * MiB),
        ("8GB", 8 * 10**9),
        ("1.5GiB", 3 * 2**29),
        (4096, 4096),
        ("rtx3060-12gb", CARDS["rtx3060-12gb"]),
    ],
)
def test_parse_budget(text, expected):
    assert parse_budget(text) == expected


@pytest.mark.parametrize("bad", ["twelve", "12XB", "-1GiB", 0, True])
def test_bad_budget_names_the_field(bad):
    with pytest.raises(ConfigError) as err:
        parse_budget(bad)
    assert err.value.field == "budget"


@pytest.mark.parametrize("arch, mode", [("inattn", "state"), ("dense", "kvcache")])
def test_chosen_size_is_the_largest_that_fits_by_the_tracker(arch, mode):
    params, memory = measure(arch, mode)
    assert memory["nano"] < memory["micro"] < memory["tiny"]
    for size in SHAPES:  # a budget of exactly a size's measured peak picks that size
        assert largest_fitting(list(SHAPES), params, memory, memory[size]) == size
    assert largest_fitting(list(SHAPES), params, memory, memory["tiny"] - 1) == "micro"
    assert largest_fitting(list(SHAPES), params, memory, memory["nano"] - 1) is None


def test_same_budget_buys_inattention_a_bigger_model():
    dense_params, dense_memory = measure("dense", "kvcache")
    ina_params, ina_memory = measure("inattn", "state")
    budget = dense_memory["micro"]  # dense micro fits exactly
    assert largest_fitting(list(SHAPES), dense_params, dense_memory, budget) == "micro"
    assert largest_fitting(list(SHAPES), ina_params, ina_memory, budget) == "tiny"
