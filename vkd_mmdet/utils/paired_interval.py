"""Confidence intervals of paired differences over seeds, the seeds a target precision needs, and
ranks that show ties.

A paired difference is a run minus the run it is compared with of the same seed (same
initialisation and data order), e.g. a method's AP minus the student alone's. Over ``n`` seeds
with mean ``m`` and sample standard deviation ``s`` (``ddof=1``), the two-sided Student-t
interval at level ``1 - alpha`` is ``m ± t(1 - alpha / 2; n - 1) * s / sqrt(n)``: exact for normal
differences, and what a reader can recompute from the per-seed file with any statistics package.
"""
import math
from typing import Dict, NamedTuple, Sequence, Tuple

import numpy as np
from scipy.stats import t as student_t


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
    half = float(student_t.ppf((1 + level) / 2, n - 1)) * sd / math.sqrt(n)
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
        if float(student_t.ppf((1 + level) / 2, n - 1)) * sd / math.sqrt(n) <= half_width:
            return n
    raise ValueError(f'sd {sd}: more than {max_seeds} seeds for a half-width of {half_width}')


def rank_by_comparisons(names: Sequence[str],
                        differences: Dict[Tuple[str, str], Tuple[float, float]]
                        ) -> Dict[str, str]:
    """Ranks (1 = best, higher is better) of ``names`` from their direct comparisons, ties shown.

    ``differences[(a, b)]`` is an interval ``(low, high)`` of ``a - b`` (e.g. the paired
    t-interval of their same-seed AP differences); a pair without one is unresolved. A name ranks
    from ``1 +`` the number of names shown better than it (the interval of their difference wholly
    on their side of 0) to the number of ranked names minus those shown worse: ``'2'`` when that
    is one place, ``'2-4'`` when some comparisons do not resolve (tied: the data cannot order
    them). A name compared with nobody ranks ``'-'`` and is left out of the others' counts.

    Each name's rank rests on its own comparisons with every other: give them at a level that
    holds jointly (e.g. Bonferroni, each at ``1 - alpha / (len(names) - 1)``) for a rank that
    holds at ``1 - alpha``.
    """
    better = dict.fromkeys(names, 0)
    worse = dict.fromkeys(names, 0)
    compared, pairs = set(), set()
    for (a, b), (low, high) in differences.items():
        if a not in better or b not in better:
            raise ValueError(f'comparison {a!r} - {b!r}: both must be among {list(names)}')
        if a == b or frozenset((a, b)) in pairs:
            raise ValueError(f'comparison {a!r} - {b!r}: expected each pair of two names once')
        pairs.add(frozenset((a, b)))
        if not low <= high:
            raise ValueError(f'interval of {a!r} - {b!r}: expected low <= high, got '
                             f'({low}, {high})')
        compared |= {a, b}
        if low > 0:  # a is better than b
            better[b] += 1
            worse[a] += 1
        elif high < 0:
            better[a] += 1
            worse[b] += 1
    ranks = {}
    for name in names:
        if name not in compared:
            ranks[name] = '-'
            continue
        best, worst = 1 + better[name], len(compared) - worse[name]
        ranks[name] = str(best) if best == worst else f'{best}-{worst}'
    return ranks
