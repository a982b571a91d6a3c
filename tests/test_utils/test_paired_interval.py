"""Paired t-intervals, the seeds a half-width needs, and ranks with ties, against published t
quantiles and hand-computed examples."""
import math

import numpy as np
import pytest

from vkd_mmdet.utils.paired_interval import paired_interval, rank_with_ties, seeds_for_half_width

# Two-sided 95 % (the 0.975 quantile) and 99 % (0.995) critical values of Student's t, from the
# standard printed tables (e.g. NIST/SEMATECH e-Handbook, 1.3.6.7.2), to the digits printed there.
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 9: 2.262, 10: 2.228,
         28: 2.048, 29: 2.045, 30: 2.042, 100: 1.984}
T_995 = {1: 63.657, 2: 9.925, 5: 4.032, 10: 3.169, 30: 2.750}


@pytest.mark.parametrize('df', sorted(T_975))
def test_interval_half_widths_use_the_printed_t_quantiles(df):
    # two values 1 apart have sd 1 / sqrt(2); so the half-width is t * sd / sqrt(2) = t / 2
    n = df + 1
    values = [0.0, 1.0] + [0.5] * (n - 2)
    sd = float(np.std(values, ddof=1))
    assert paired_interval(values).half_width == \
        pytest.approx(T_975[df] * sd / math.sqrt(n), abs=6e-4 * sd / math.sqrt(n) + 1e-12)
    if df in T_995:
        assert paired_interval(values, level=0.99).half_width == \
            pytest.approx(T_995[df] * sd / math.sqrt(n), abs=6e-4 * sd / math.sqrt(n) + 1e-12)


def test_paired_interval_by_hand():
    # differences 1, 2, 3: mean 2, sd 1; half-width t(0.975; 2) / sqrt(3) = 4.302653 / 1.732051
    interval = paired_interval([1.0, 2.0, 3.0])
    assert (interval.mean, interval.sd, interval.n) == (2.0, 1.0, 3)
    assert interval.half_width == pytest.approx(2.484138, abs=1e-6)
    assert (interval.low, interval.high) == pytest.approx((2 - 2.484138, 2 + 2.484138), abs=1e-6)
    # a 90 % interval is narrower: t(0.95; 2) = 2.920
    assert paired_interval([1.0, 2.0, 3.0], level=0.9).half_width == \
        pytest.approx(2.920 / math.sqrt(3), abs=1e-3)


def test_one_seed_has_no_interval_and_bad_input_raises():
    single = paired_interval([0.02])
    assert single.mean == 0.02 and single.n == 1
    assert math.isnan(single.low) and math.isnan(single.high) and math.isnan(single.sd)
    for bad in ([], [0.1, float('nan')], [[0.1, 0.2]]):
        with pytest.raises(ValueError, match='one per seed'):
            paired_interval(bad)


def test_seeds_for_half_width_by_hand():
    # sd = half-width: need t(0.975; n - 1) / sqrt(n) <= 1; n = 6: 2.571 / 2.449 = 1.05,
    # n = 7: 2.447 / 2.646 = 0.92.
    assert seeds_for_half_width(0.6, 0.6) == 7
    # sd 1.6 AP (VkD's spread on the one-stage proxy) for 0.6 AP: t / sqrt(n) <= 0.375;
    # n = 29: 2.048 / 5.385 = 0.380, n = 30: 2.045 / 5.477 = 0.373.
    assert seeds_for_half_width(1.6, 0.6) == 30
    assert seeds_for_half_width(0.0, 0.6) == 2
    with pytest.raises(ValueError, match='half_width'):
        seeds_for_half_width(1.0, 0.0)


def test_rank_with_ties_on_constructed_intervals():
    # apart: a strict order
    assert rank_with_ties({'a': (3, 4), 'b': (1, 2), 'c': (5, 6)}) == \
        {'c': '1', 'a': '2', 'b': '3'}
    # all overlapping: all tied
    assert rank_with_ties({'a': (1, 3), 'b': (2, 4), 'c': (2.5, 2.6)}) == \
        {'a': '1-3', 'b': '1-3', 'c': '1-3'}
    # a chain: a overlaps b, b overlaps c, a lies above c
    assert rank_with_ties({'a': (3, 4), 'b': (2.5, 3.5), 'c': (1, 2.8), 's': (0, 0)}) == \
        {'a': '1-2', 'b': '1-3', 'c': '2-3', 's': '4'}
    # touching ends overlap (a tie); no interval ranks '-' and does not count
    assert rank_with_ties({'a': (1, 2), 'b': (2, 3), 'x': None}) == \
        {'a': '1-2', 'b': '1-2', 'x': '-'}
    with pytest.raises(ValueError, match="'a'"):
        rank_with_ties({'a': (2, 1)})
