"""The verdict functions on synthetic rows: every word, the interval, the edge cases."""

import math

import pytest

from inattn.verdicts import (
    HELD,
    INCONCLUSIVE,
    NOT_HELD,
    paired,
    paired_by_seed,
    t_quantile_975,
    threshold_verdict,
    verdict,
)


@pytest.mark.parametrize(
    ("df", "expected"),
    [(1, 12.706), (2, 4.303), (4, 2.776), (29, 2.045), (60, 2.000), (120, 1.980)],
)
def test_t_quantile_matches_tables(df, expected):
    assert t_quantile_975(df) == pytest.approx(expected, abs=2e-3)


def test_paired_summary_from_the_definition():
    d = [0.10, 0.12, 0.08, 0.11, 0.09]
    p = paired(d)
    mean = sum(d) / 5
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / 4)
    assert p.n == 5 and p.mean == pytest.approx(mean)
    assert p.se == pytest.approx(sd / math.sqrt(5))
    assert p.lo == pytest.approx(mean - 2.776 * sd / math.sqrt(5), abs=1e-4)
    assert p.hi == pytest.approx(mean + 2.776 * sd / math.sqrt(5), abs=1e-4)


@pytest.mark.parametrize(
    ("a", "b", "word"),
    [
        ([2.0, 2.1, 2.05, 2.2, 2.0], [1.8, 1.9, 1.86, 2.0, 1.79], HELD),  # a - b > 0 on every seed
        ([1.8, 1.9, 1.86, 2.0, 1.79], [2.0, 2.1, 2.05, 2.2, 2.0], NOT_HELD),  # the other way
        ([2.0, 1.9, 2.05, 1.95, 2.0], [1.98, 1.93, 2.0, 1.99, 1.98], INCONCLUSIVE),  # straddles 0
    ],
)
def test_verdict_all_three_outcomes(a, b, word):
    p = paired_by_seed(dict(enumerate(a)), dict(enumerate(b)))
    assert verdict(p) == word


def test_one_seed_is_inconclusive_whatever_the_sign():
    p = paired([0.5])
    assert p.n == 1 and math.isnan(p.lo)
    assert verdict(p) == INCONCLUSIVE
    assert "no interval" in p.text()


def test_pairs_only_shared_seeds():
    p = paired_by_seed({1: 3.0, 2: 4.0, 3: 5.0}, {2: 1.0, 3: 2.0, 4: 9.0})
    assert p.n == 2 and p.mean == pytest.approx(3.0)
    with pytest.raises(ValueError):
        paired_by_seed({1: 1.0}, {2: 1.0})


def test_threshold_verdict():
    assert threshold_verdict(1.0, 0.98, 1.02) == HELD
    assert threshold_verdict(1.1, 0.98, 1.02) == NOT_HELD
    assert threshold_verdict(float("nan"), 0.98, 1.02) == INCONCLUSIVE


def test_combine_rule():
    from inattn.verdicts import combine

    assert combine([HELD, HELD]) == HELD
    assert combine([HELD, INCONCLUSIVE]) == INCONCLUSIVE
    assert combine([HELD, NOT_HELD]) == NOT_HELD
    assert combine([]) == INCONCLUSIVE
