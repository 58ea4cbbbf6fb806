"""Equal-memory size selection: the largest size that fits by the tracker, clear errors."""

from __future__ import annotations

import pytest

from inattn.errors import ConfigError
from inattn.experiments.budget import CARDS, Candidate, parse_budget, pick_largest
from inattn.experiments.memory import inference_peak
from inattn.model import GPT, GPTConfig

MiB = 2**20
SHAPES = {"nano": (2, 2, 64), "micro": (3, 3, 96), "tiny": (4, 4, 128)}
T = 2048


def ladder(arch: str) -> list[Candidate]:
    out = []
    for size, (L, H, d) in SHAPES.items():
        cfg = GPTConfig(arch=arch, n_layer=L, n_head=H, d_model=d, vocab_size=512, context_length=T)
        out.append(Candidate(size, cfg, GPT(cfg).num_params()))
    return out


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
    candidates = ladder(arch)
    measured = {c.size: inference_peak(c.cfg, T, mode) for c in candidates}
    assert measured["nano"] < measured["micro"] < measured["tiny"]
    # a budget just above each size's measured peak picks exactly that size
    for c in candidates:
        choice = pick_largest(candidates, measured[c.size], lambda c: measured[c.size], arch)
        assert choice.size == c.size and choice.memory_bytes == measured[c.size]
    just_below_tiny = measured["tiny"] - 1
    assert pick_largest(candidates, just_below_tiny, lambda c: measured[c.size], arch).size == (
        "micro"
    )


def test_same_budget_buys_inattention_a_bigger_model():
    budget = inference_peak(ladder("dense")[1].cfg, T, "kvcache")  # dense micro fits exactly
    ina = pick_largest(ladder("inattn"), budget, lambda c: inference_peak(c.cfg, T, "state"), "i")
    dense = pick_largest(
        ladder("dense"), budget, lambda c: inference_peak(c.cfg, T, "kvcache"), "d"
    )
    assert (dense.size, ina.size) == ("micro", "tiny") and ina.params > dense.params


def test_budget_below_every_size_is_a_clear_error():
    candidates = ladder("dense")
    with pytest.raises(ConfigError, match="smallest needs") as err:
        pick_largest(candidates, 1024, lambda c: inference_peak(c.cfg, T, "kvcache"), "dense")
    assert err.value.field == "budget"
