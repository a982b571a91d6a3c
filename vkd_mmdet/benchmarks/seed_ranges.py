"""Seeds as text: ``'8-10, 12'`` <-> ``[8, 9, 10, 12]``, and ``--row-seeds``' ``ROW=SEEDS``.

The leaderboard runs some rows on more seeds than others (the student alone, whose spread is in
every gain over it; rows whose paired differences spread widely): ``--row-seeds ld=8-31`` reads
as ``('ld', [8, ..., 31])``, and the page writes the seeds back in the same form.
"""
from typing import List, Sequence, Tuple


def format_seed_ranges(seeds: Sequence[int]) -> str:
    """``[8, 9, 10, 12]`` as ``'8-10, 12'``."""
    parts: List[List[int]] = []
    for seed in sorted(seeds):
        if parts and seed == parts[-1][1] + 1:
            parts[-1][1] = seed
        else:
            parts.append([seed, seed])
    return ', '.join(str(a) if a == b else f'{a}-{b}' for a, b in parts)


def parse_row_seeds(text: str) -> Tuple[str, List[int]]:
    """``'ld=8-15,20'`` as ``('ld', [8, ..., 15, 20])``: a row key, ``=``, comma-separated seeds
    or inclusive ranges ``first-last`` (non-negative, each seed once)."""
    key, sep, spec = text.partition('=')
    if not sep or not key or not spec:
        raise ValueError(f'expected ROW=SEEDS (e.g. ld=8-31 or vkd=8,9,12), got {text!r}')
    seeds: List[int] = []
    for part in spec.split(','):
        first, dash, last = part.strip().partition('-')
        if not first.isdigit() or (dash and not last.isdigit()):
            raise ValueError(f'{text!r}: {part!r} is not a seed (0, 1, ...) or a range (8-31)')
        low, high = int(first), int(last if dash else first)
        if high < low:
            raise ValueError(f'{text!r}: the range {part!r} runs backwards')
        seeds += range(low, high + 1)
    if len(set(seeds)) != len(seeds):
        raise ValueError(f'{text!r}: a seed is given twice')
    return key, seeds
