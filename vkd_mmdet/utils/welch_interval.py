"""Confidence interval of a difference of two means measured over different numbers of seeds
(Welch's t-interval), and the seeds the second side needs for a target precision.

The leaderboard compares every method with one reference, the student alone. Where that
reference's seed-to-seed spread dominates the paired differences (a distilled student is far
steadier than the student trained alone), pairing removes little of it, and the cheapest way to
narrow every method's interval at once is to run the reference alone on more seeds. Its mean is
then compared with each method's over all of each side's seeds, ``a`` (``n_a`` values, sample std
``s_a``) and ``b`` (``n_b``, ``s_b``)::

    se^2 = s_a^2 / n_a + s_b^2 / n_b
    df   = se^4 / (s_a^4 / (n_a^2 (n_a - 1)) + s_b^4 / (n_b^2 (n_b - 1)))   # Welch-Satterthwaite
    mean(a) - mean(b) ± t(1 - alpha / 2; df) * se

This ignores the covariance of same-seed runs: where it is positive (a seed that favours the
student alone favours the distilled run too) the interval is conservative. It is what
``scipy.stats.ttest_ind(a, b, equal_var=False).confidence_interval()`` gives, so a reader can
recompute it from the per-seed file. With ``n_a = n_b`` and the same seeds, use the paired
interval (:mod:`~vkd_mmdet.utils.paired_interval`) instead.
"""
import math
from typing import NamedTuple, Optional, Sequence

import numpy as np
from scipy.stats import t as student_t


class WelchInterval(NamedTuple):
    """Difference of two means, its standard error, Welch-Satterthwaite degrees of freedom and
    two-sided t-interval."""
    mean: float
    se: float
    df: float
    low: float
    high: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2


def _moments(values: Sequence[float], name: str):
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or len(array) < 2 or not np.isfinite(array).all():
        raise ValueError(f'{name}: expected at least two finite values, one per seed, got '
                         f'{values!r}')
    return float(array.mean()), float(array.var(ddof=1)), len(array)


def _half_width(var_a: float, n_a: int, var_b: float, n_b: int, level: float):
    parts = (var_a / n_a, var_b / n_b)
    se2 = sum(parts)
    if se2 == 0:
        return 0.0, 0.0, float(n_a + n_b - 2)
    df = se2 ** 2 / (parts[0] ** 2 / (n_a - 1) + parts[1] ** 2 / (n_b - 1))
    se = math.sqrt(se2)
    return float(student_t.ppf((1 + level) / 2, df)) * se, se, df


def welch_interval(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> WelchInterval:
    """The t-interval of ``mean(a) - mean(b)`` at ``level``, ``a`` and ``b`` one value per seed
    each (at least two), their variances not assumed equal."""
    mean_a, var_a, n_a = _moments(a, 'first sample')
    mean_b, var_b, n_b = _moments(b, 'second sample')
    half, se, df = _half_width(var_a, n_a, var_b, n_b, level)
    mean = mean_a - mean_b
    return WelchInterval(mean, se, df, mean - half, mean + half)


def second_seeds_for_half_width(sd_a: float, n_a: int, sd_b: float, half_width: float,
                                level: float = 0.95, max_seeds: int = 10000) -> Optional[int]:
    """The fewest seeds ``n_b >= 2`` of the second side for a Welch interval of half-width at
    most ``half_width``, the first side having ``n_a`` seeds with sample std ``sd_a`` and the
    second sample std ``sd_b``; ``None`` where no ``n_b`` reaches it: as ``n_b`` grows the
    half-width falls to ``t(1 - alpha / 2; n_a - 1) * sd_a / sqrt(n_a)``, the first side's own
    precision, which only more seeds of that side improve."""
    if not (sd_a >= 0 and sd_b >= 0 and half_width > 0 and n_a >= 2):
        raise ValueError(f'expected sd_a, sd_b >= 0, half_width > 0 and n_a >= 2, got '
                         f'sd_a={sd_a}, n_a={n_a}, sd_b={sd_b}, half_width={half_width}')
    for n_b in range(2, max_seeds + 1):
        if _half_width(sd_a ** 2, n_a, sd_b ** 2, n_b, level)[0] <= half_width:
            return n_b
    return None
