"""Paired t-intervals, the seeds a half-width needs, and ranks with ties, against published t
quantiles and hand-computed examples."""
import math

import numpy as np
import pytest

from vkd_mmdet.utils.paired_interval import (
    paired_interval,
    rank_by_comparisons,
    seeds_for_half_width,
)

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


def test_rank_by_comparisons_on_constructed_differences():
    names = ['a', 'b', 'c']
    # every pair resolved: a strict order (intervals of first - second)
    assert rank_by_comparisons(names, {('a', 'b'): (1, 2), ('c', 'a'): (0.5, 3),
                                       ('b', 'c'): (-4, -1)}) == {'c': '1', 'a': '2', 'b': '3'}
    # nothing resolved: all tied
    assert rank_by_comparisons(names, {('a', 'b'): (-1, 1), ('a', 'c'): (-1, 2),
                                       ('b', 'c'): (0, 1)}) == \
        {'a': '1-3', 'b': '1-3', 'c': '1-3'}
    # a chain: a above c, neither resolved against b; an interval touching 0 does not resolve
    assert rank_by_comparisons(names + ['s'], {
        ('a', 'b'): (-0.5, 1), ('b', 'c'): (-0.2, 2), ('a', 'c'): (0.1, 3),
        ('a', 's'): (3, 4), ('b', 's'): (2, 3), ('c', 's'): (0, 2)}) == \
        {'a': '1-2', 'b': '1-3', 'c': '2-4', 's': '3-4'}
    # a pair without an interval is unresolved; a name compared with nobody ranks '-' and is not
    # counted
    assert rank_by_comparisons(names + ['x'], {('a', 'b'): (1, 2)}) == \
        {'a': '1', 'b': '2', 'c': '-', 'x': '-'}
    with pytest.raises(ValueError, match="'a' - 'b'"):
        rank_by_comparisons(names, {('a', 'b'): (2, 1)})
    with pytest.raises(ValueError, match="'z'"):
        rank_by_comparisons(names, {('a', 'z'): (1, 2)})
    # a name against itself, or a pair given both ways round, would count twice
    with pytest.raises(ValueError, match='each pair'):
        rank_by_comparisons(names, {('a', 'a'): (1, 2)})
    with pytest.raises(ValueError, match='each pair'):
        rank_by_comparisons(names, {('a', 'b'): (1, 2), ('b', 'a'): (-2, -1)})
