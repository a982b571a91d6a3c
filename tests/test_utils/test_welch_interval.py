"""Welch's t-interval of a difference of means and the second side's seeds it needs, against
printed t quantiles, hand computations and scipy's own Welch test."""
import math

import numpy as np
import pytest
from scipy.stats import t as student_t
from scipy.stats import ttest_ind

from vkd_mmdet.utils.paired_interval import seeds_for_half_width
from vkd_mmdet.utils.welch_interval import second_seeds_for_half_width, welch_interval


def test_equal_spreads_and_sizes_by_hand():
    # a = 1, 2, 3 and b = 0, 1, 2: variances 1 and 1, se^2 = 1/3 + 1/3, df = (2/3)^2 /
    # (2 (1/3)^2 / 2) = 4; half-width t(0.975; 4) * sqrt(2/3) = 2.776 * 0.8165 (printed table)
    interval = welch_interval([1.0, 2.0, 3.0], [0.0, 1.0, 2.0])
    assert interval.mean == pytest.approx(1.0)
    assert interval.df == pytest.approx(4.0)
    assert interval.se == pytest.approx(math.sqrt(2 / 3))
    assert interval.half_width == pytest.approx(2.776 * math.sqrt(2 / 3), abs=1e-3)


def test_a_constant_second_side_leaves_the_one_sample_interval_of_the_first():
    # b has no spread: se^2 = s_a^2 / n_a, df = n_a - 1: t(0.975; 2) / sqrt(3) for a = 1, 2, 3
    interval = welch_interval([1.0, 2.0, 3.0], [0.5] * 5)
    assert interval.df == pytest.approx(2.0)
    assert (interval.low, interval.high) == pytest.approx((1.5 - 2.484138, 1.5 + 2.484138),
                                                          abs=1e-6)


@pytest.mark.parametrize('sizes', [(8, 32), (3, 5), (8, 8), (20, 4)])
@pytest.mark.parametrize('level', [0.95, 0.9])
def test_matches_scipys_welch_test(sizes, level):
    rng = np.random.default_rng(sum(sizes))
    a = rng.normal(0.088, 0.003, sizes[0])
    b = rng.normal(0.082, 0.010, sizes[1])
    expected = ttest_ind(a, b, equal_var=False).confidence_interval(level)
    interval = welch_interval(a, b, level)
    assert (interval.low, interval.high) == pytest.approx((expected.low, expected.high),
                                                          rel=1e-9)
    assert interval.mean == pytest.approx(a.mean() - b.mean(), rel=1e-12)


def test_bad_samples_raise_and_one_value_has_no_interval():
    for bad in ([], [0.1, float('inf')], [[0.1, 0.2]]):
        with pytest.raises(ValueError, match='finite values, one per seed'):
            welch_interval(bad, [0.1, 0.2])
    with pytest.raises(ValueError, match='second sample'):
        welch_interval([0.1, 0.2], [])
    single = welch_interval([0.3], [0.1, 0.2])
    assert single.mean == pytest.approx(0.15)
    assert all(math.isnan(x) for x in (single.low, single.high, single.df))


def test_no_spread_on_either_side_is_a_point():
    interval = welch_interval([0.5, 0.5], [0.25, 0.25, 0.25])  # exact in binary
    assert (interval.low, interval.high, interval.se) == (0.25, 0.25, 0.0)
    assert math.isnan(interval.df)


def _half_width(sd_a, n_a, sd_b, n_b, level=0.95):
    # written out here, apart from the module: Welch-Satterthwaite df, t quantile from scipy
    va, vb = sd_a ** 2 / n_a, sd_b ** 2 / n_b
    df = (va + vb) ** 2 / (va ** 2 / (n_a - 1) + vb ** 2 / (n_b - 1))
    return student_t.ppf((1 + level) / 2, df) * math.sqrt(va + vb)


@pytest.mark.parametrize('sd_a, n_a, sd_b', [(0.2, 8, 1.0), (0.48, 8, 0.99), (0.3, 5, 0.6)])
def test_second_seeds_are_the_fewest_that_reach_the_half_width(sd_a, n_a, sd_b):
    n_b = second_seeds_for_half_width(sd_a, n_a, sd_b, 0.6)
    assert _half_width(sd_a, n_a, sd_b, n_b) <= 0.6 < _half_width(sd_a, n_a, sd_b, n_b - 1)


def test_second_seeds_without_spread_on_the_first_side_are_the_paired_count():
    # s_a = 0: the interval is the second side's one-sample interval, n_b seeds of sd s_b
    for sd in (0.6, 1.0, 1.6):
        assert second_seeds_for_half_width(0.0, 8, sd, 0.6) == seeds_for_half_width(sd, 0.6)


def test_more_second_seeds_can_widen_the_interval_again():
    # few seeds on the first side: as n_b grows the degrees of freedom fall towards n_a - 1 = 2
    # and t(0.975; df) rises faster than the standard error falls
    n_b = second_seeds_for_half_width(0.3, 3, 1.0, 0.6)
    assert _half_width(0.3, 3, 1.0, n_b) <= 0.6 < _half_width(0.3, 3, 1.0, 1000)


def test_a_first_side_too_spread_for_the_bound_needs_its_own_seeds():
    # however many seeds b gets, the half-width stays above t(0.975; 3) * 1.0 / 2 = 1.59
    assert second_seeds_for_half_width(1.0, 4, 0.1, 0.6) is None
    with pytest.raises(ValueError, match='n_a >= 2'):
        second_seeds_for_half_width(0.2, 1, 1.0, 0.6)
