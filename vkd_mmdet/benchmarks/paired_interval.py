"""Confidence intervals of paired differences over seeds, the seeds a target precision needs, and
ranks that show ties.

A paired difference is a run minus the run it is compared with of the same seed (same
initialisation and data order), e.g. a method's AP minus the student alone's. Over ``n`` seeds
with mean ``m`` and sample standard deviation ``s`` (``ddof=1``), the two-sided Student-t
interval at level ``1 - alpha`` is ``m ± t(1 - alpha / 2; n - 1) * s / sqrt(n)``: exact for normal
differences, and what a reader can recompute from the per-seed file with any statistics package.
"""
import math
from typing import Dict, NamedTuple, Optional, Sequence, Tuple

import numpy as np


def t_two_sided_probability(t: float, df: int) -> float:
    """``P(|T| < t)`` for Student's t with ``df`` (a positive integer) degrees of freedom.

    The closed forms for integer ``df`` (Abramowitz & Stegun 26.7.3-4), with ``theta =
    atan(t / sqrt(df))``: for odd ``df``, ``2 / pi * (theta + sin(theta) * sum_k c_k
    cos(theta)^(2k+1))``, ``c_0 = 1``, ``c_k = c_(k-1) * 2k / (2k+1)``, ``k < (df-1)/2``; for even
    ``df``, ``sin(theta) * sum_k d_k cos(theta)^(2k)``, ``d_0 = 1``, ``d_k = d_(k-1) * (2k-1) /
    (2k)``, ``k < df/2``.
    """
    if not (isinstance(df, (int, np.integer)) and df >= 1):
        raise ValueError(f'degrees of freedom: expected a positive integer, got {df!r}')
    theta = math.atan(abs(t) / math.sqrt(df))
    sin, cos = math.sin(theta), math.cos(theta)
    total, term = 0.0, 1.0
    if df % 2:
        for k in range((df - 1) // 2):
            term = 1.0 if k == 0 else term * 2 * k / (2 * k + 1)
            total += term * cos**(2 * k + 1)
        return 2 / math.pi * (theta + sin * total)
    for k in range(df // 2):
        term = 1.0 if k == 0 else term * (2 * k - 1) / (2 * k)
        total += term * cos**(2 * k)
    return sin * total


def t_quantile(probability: float, df: int) -> float:
    """The ``probability`` quantile (``> 0.5``) of Student's t with ``df`` degrees of freedom:
    ``t`` with ``P(T < t) = probability``, by bisection of :func:`t_two_sided_probability` to
    machine precision (``t_quantile(0.975, 2)`` is 4.3027)."""
    if not 0.5 < probability < 1:
        raise ValueError(f'probability: expected a value in (0.5, 1), got {probability}')
    target = 2 * probability - 1
    low, high = 0.0, 1.0
    while t_two_sided_probability(high, df) < target:
        low, high = high, 2 * high
    while high - low > 1e-13 * high:
        middle = (low + high) / 2
        low, high = (middle, high) if t_two_sided_probability(middle, df) < target else \
            (low, middle)
    return (low + high) / 2


class PairedInterval(NamedTuple):
    """Mean, sample std and two-sided t-interval of ``n`` paired differences (``low`` and
    ``high`` are NaN below two seeds: no spread, no interval)."""
    mean: float
    sd: float
    n: int
    low: float
    high: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2


def paired_interval(differences: Sequence[float], level: float = 0.95) -> PairedInterval:
    """The t-interval of the mean of ``differences`` (one per seed) at ``level``."""
    values = np.asarray(differences, dtype=float)
    if values.ndim != 1 or len(values) == 0 or not np.isfinite(values).all():
        raise ValueError(f'paired differences: expected finite values, one per seed, got '
                         f'{differences!r}')
    n, mean = len(values), float(values.mean())
    if n < 2:
        return PairedInterval(mean, float('nan'), n, float('nan'), float('nan'))
    sd = float(values.std(ddof=1))
    half = t_quantile((1 + level) / 2, n - 1) * sd / math.sqrt(n)
    return PairedInterval(mean, sd, n, mean - half, mean + half)


def seeds_for_half_width(sd: float, half_width: float, level: float = 0.95,
                         max_seeds: int = 10000) -> int:
    """The fewest seeds ``n >= 2`` whose t-interval at ``level`` has a half-width of at most
    ``half_width`` when the paired differences' standard deviation is ``sd``:
    ``t(1 - alpha / 2; n - 1) * sd / sqrt(n) <= half_width``."""
    if not (sd >= 0 and half_width > 0):
        raise ValueError(f'expected sd >= 0 and half_width > 0, got sd={sd}, '
                         f'half_width={half_width}')
    for n in range(2, max_seeds + 1):
        if t_quantile((1 + level) / 2, n - 1) * sd / math.sqrt(n) <= half_width:
            return n
    raise ValueError(f'sd {sd}: more than {max_seeds} seeds for a half-width of {half_width}')


def rank_with_ties(intervals: Dict[str, Optional[Tuple[float, float]]]) -> Dict[str, str]:
    """Ranks (1 = best, higher is better) of named intervals ``(low, high)``, ties shown.

    A name ranks from ``1 +`` the number of intervals that lie wholly above its own to the number
    of intervals minus those that lie wholly below it: ``'2'`` when that is one place, ``'2-4'``
    when it overlaps others (tied with them: the data cannot order them). ``None`` (no
    interval: a single seed) ranks ``'-'`` and is left out of the others' counts.
    """
    known = {name: bounds for name, bounds in intervals.items() if bounds is not None}
    for name, (low, high) in known.items():
        if not low <= high:
            raise ValueError(f'interval of {name!r}: expected low <= high, got ({low}, {high})')
    ranks = {}
    for name, bounds in intervals.items():
        if bounds is None:
            ranks[name] = '-'
            continue
        above = sum(low > bounds[1] for other, (low, _) in known.items() if other != name)
        below = sum(high < bounds[0] for other, (_, high) in known.items() if other != name)
        best, worst = 1 + above, len(known) - below
        ranks[name] = str(best) if best == worst else f'{best}-{worst}'
    return ranks
