"""The linear-memory claim's rules (inattn.claims), which the vram experiment and
benchmarks/inference_targets.py share."""

from __future__ import annotations

import pytest

from inattn.claims import (
    NO_CEILING,
    TOKEN_ID_BYTES,
    expected_state_growth,
    exponent_in_band,
    growth_matches,
    growth_per_token,
    state_row_bytes,
)


def test_state_bytes_per_token_follow_d_and_the_dtype():
    assert state_row_bytes(768, "bf16") == 768 * 2
    assert state_row_bytes(64, "fp32") == 64 * 4
    assert expected_state_growth(768, "bf16") == 768 * 2 + TOKEN_ID_BYTES == 1544


def test_growth_per_token_uses_the_two_longest_contexts_in_any_order():
    # a constant workspace of 1000 B plus 10 B per token, and a short point off the line
    contexts = [1024, 64, 512, 256]
    sizes = [1000 + 10 * t for t in contexts]
    sizes[1] += 777
    assert growth_per_token(contexts, sizes) == 10.0


def test_growth_matches_within_the_tolerance():
    assert growth_matches(101.9, 100, 0.02) and growth_matches(98.1, 100, 0.02)
    assert not growth_matches(103, 100, 0.02)


@pytest.mark.parametrize(
    "exponent, band, inside",
    [
        (1.0, (0.95, 1.05), True),
        (0.94, (0.95, 1.05), False),
        (None, (0.95, 1.05), False),
        (2.0, (1.9, NO_CEILING), True),
        (1.8, (1.9, NO_CEILING), False),
    ],
)
def test_exponent_in_band(exponent, band, inside):
    assert exponent_in_band(exponent, band) is inside
