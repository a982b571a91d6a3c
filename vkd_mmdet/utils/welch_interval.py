"""Confidence interval of a difference of two means measured over different numbers of seeds
(Welch's t-interval), and the seeds the second side needs for a target precision.

The leaderboard compares every method with one reference, the student alone. Where that
reference's seed-to-seed spread dominates the paired differences (a distilled student is far
steadier than the student trained alone), pairing removes little of it, and the cheapest way to
narrow the intervals is to run the reference alone on more seeds (as far as each method's own
seeds allow: :func:`second_seeds_for_half_width`). Its mean is then compared with each method's
over all of each side's seeds, ``a`` (``n_a`` values, sample std ``s_a``) and ``b`` (``n_b``,
``s_b``)::

    se^2 = s_a^2 / n_a + s_b^2 / n_b
    df   = se^4 / (s_a^4 / (n_a^2 (n_a - 1)) + s_b^4 / (n_b^2 (n_b - 1)))   # Welch-Satterthwaite
    mean(a) - mean(b) ± t(1 - alpha / 2; df) * se

This ignores the covariance of same-seed runs: where it is positive (a seed that favours the
student alone favours the distilled run too) the interval is conservative, where negative it is
not. It is what ``scipy.stats.ttest_ind(a, b, equal_var=False).confidence_interval()`` gives, so
a reader can recompute it from the per-seed file. With the same seeds on both sides, use the
paired interval (:mod:`~vkd_mmdet.utils.paired_interval`) instead.
"""
from typing import NamedTuple, Optional, Sequence, Tuple

import numpy as np
from scipy.stats import t as student_t


class WelchInterval(NamedTuple):
    """Difference of two means, its standard error, Welch-Satterthwaite degrees of freedom and
    two-sided t-interval (``low``, ``high`` and ``df`` are NaN below two values on a side, and
    ``df`` where neither side varies)."""
    mean: float
    se: float
    df: float
    low: float
    high: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2


def _moments(values: Sequence[float], name: str) -> Tuple[float, float, int]:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or len(array) == 0 or not np.isfinite(array).all():
        raise ValueError(f'{name}: expected finite values, one per seed, got {values!r}')
    variance = float(array.var(ddof=1)) if len(array) > 1 else float('nan')
    return float(array.mean()), variance, len(array)


def _half_width(var_a: float, n_a: int, var_b, n_b, level: float):
    """Half-width, standard error and degrees of freedom; ``var_b`` and ``n_b`` may be arrays
    (one half-width per ``n_b``)."""
    part_a, part_b = var_a / n_a, var_b / n_b
    se2 = part_a + part_b
    with np.errstate(invalid='ignore', divide='ignore'):
        df = se2 ** 2 / (part_a ** 2 / (n_a - 1) + part_b ** 2 / (n_b - 1))
    se = np.sqrt(se2)
    return student_t.ppf((1 + level) / 2, df) * se, se, df


def welch_interval(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> WelchInterval:
    """The t-interval of ``mean(a) - mean(b)`` at ``level``, ``a`` and ``b`` one value per seed
    each, their variances not assumed equal."""
    mean_a, var_a, n_a = _moments(a, 'first sample')
    mean_b, var_b, n_b = _moments(b, 'second sample')
    mean = mean_a - mean_b
    if n_a < 2 or n_b < 2:
        nan = float('nan')
        return WelchInterval(mean, nan, nan, nan, nan)
    if var_a == var_b == 0:  # no spread on either side: no t-distribution to speak of
        return WelchInterval(mean, 0.0, float('nan'), mean, mean)
    half, se, df = (float(x) for x in _half_width(var_a, n_a, var_b, n_b, level))
    return WelchInterval(mean, se, df, mean - half, mean + half)


def second_seeds_for_half_width(sd_a: float, n_a: int, sd_b: float, half_width: float,
                                level: float = 0.95, max_seeds: int = 10000) -> Optional[int]:
    """The fewest seeds ``n_b >= 2`` of the second side for a Welch interval of half-width at
    most ``half_width``, the first side having ``n_a`` seeds with sample std ``sd_a`` and the
    second sample std ``sd_b``; ``None`` where no ``n_b`` up to ``max_seeds`` reaches it.

    More seeds of the second side do not always help: its share of the variance shrinks, and
    with it the degrees of freedom, towards ``n_a - 1``; the half-width tends to
    ``t(1 - alpha / 2; n_a - 1) * sd_a / sqrt(n_a)``, the first side's own precision, and with
    few seeds on the first side it can rise again past the ``n_b`` this returns."""
    if not (sd_a >= 0 and sd_b >= 0 and half_width > 0 and n_a >= 2):
        raise ValueError(f'expected sd_a, sd_b >= 0, half_width > 0 and n_a >= 2, got '
                         f'sd_a={sd_a}, n_a={n_a}, sd_b={sd_b}, half_width={half_width}')
    n_b = np.arange(2, max_seeds + 1)
    if sd_a == sd_b == 0:
        return 2
    half = _half_width(sd_a ** 2, n_a, np.full(n_b.shape, float(sd_b) ** 2), n_b, level)[0]
    reached = np.flatnonzero(half <= half_width)
    return int(n_b[reached[0]]) if len(reached) else None
