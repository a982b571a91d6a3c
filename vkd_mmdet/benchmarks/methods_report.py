"""The leaderboard's tables (``tools/bench_methods.py``) from its runs' records.

A record (one training run, :func:`~vkd_mmdet.benchmarks.training_run.train`) holds ``AP``,
``AP50``, ``seed``, ``train_time`` and ``row``: ``(proxy, row key, loss-weight factor)``.
"""
import json
import os.path as osp
from typing import Dict, List, NamedTuple, Optional, Sequence, Set, Tuple, Union

import numpy as np

from ..utils.paired_interval import (
    PairedInterval,
    paired_interval,
    rank_by_comparisons,
    seeds_for_half_width,
)
from ..utils.welch_interval import WelchInterval, second_seeds_for_half_width, welch_interval


def _runs(records: List[dict], proxy: str, key: str) -> List[dict]:
    return [r for r in records if tuple(r['row'][:2]) == (proxy, key)]


def mean_std(values: Sequence[float], scale: float = 100.0, digits: int = 1,
             sign: str = '') -> str:
    """``mean ± sample std`` of ``values`` x ``scale`` (the mean alone for one value)."""
    values = scale * np.asarray(values, dtype=float)
    text = f'{values.mean():{sign}.{digits}f}'
    return text + (f' ± {values.std(ddof=1):.{digits}f}' if len(values) > 1 else '')


def paired_gains(runs: List[dict], students: List[dict]) -> List[float]:
    """AP of each run minus the AP of the same seed's run in ``students`` (the student alone, or
    another reference row; seeds without one are left out)."""
    student_ap = {r['seed']: r['AP'] for r in students}
    return [r['AP'] - student_ap[r['seed']] for r in runs if r['seed'] in student_ap]


def _seeds(runs: List[dict]) -> Set[int]:
    return {r['seed'] for r in runs}


def gain_interval(runs: List[dict], students: List[dict], level: float = 0.95
                  ) -> Tuple[Union[PairedInterval, WelchInterval], Optional[List[float]]]:
    """The interval of a row's gain over the student alone: where the student alone ran seeds
    beyond all of the row's, Welch's t-interval of the difference of the means over all of each
    side's seeds (returned with ``None``: no gain per seed); else the paired t-interval over
    their common seeds (returned with the paired gains)."""
    if _seeds(runs) < _seeds(students) or not _seeds(runs) & _seeds(students):
        return welch_interval([r['AP'] for r in runs], [r['AP'] for r in students], level), None
    gains = paired_gains(runs, students)
    return paired_interval(gains, level), gains


def interval_text(interval: Union[PairedInterval, WelchInterval]) -> str:
    """``[low, high]`` in AP x100 with signs, ``-`` where there is no interval."""
    if np.isnan(interval.low):
        return '-'
    return f'[{100 * interval.low:+.1f}, {100 * interval.high:+.1f}]'


class RowSummary(NamedTuple):
    """What the tables say about one row of one proxy: its runs; its gain over the student alone
    (``None`` for the student alone itself), with the paired gains where the interval is paired;
    its rank among the proxy's rows; the share of the teacher-student gap it closes (``None``
    for the student alone, NaN where the teacher is not ahead); and its paired differences to
    the reference row with their interval (both ``None`` for the student alone, the reference
    itself, or no common seed)."""
    row: object
    runs: List[dict]
    gain: Optional[Union[PairedInterval, WelchInterval]]
    paired: Optional[List[float]]
    rank: str
    closed: Optional[float]
    versus: Optional[List[float]]
    versus_interval: Optional[PairedInterval]


def _difference(a: str, b: str, runs: Dict[str, List[dict]], level: float
                ) -> Optional[Tuple[float, float]]:
    """The interval of row ``a`` minus row ``b`` at ``level``: against the student alone the
    gain's (:func:`gain_interval`), between two other rows paired on their common seeds; None
    where there is none (fewer than two common seeds; for Welch's, one run on a side)."""
    if 'student' in (a, b):
        sign, row = (1, a) if b == 'student' else (-1, b)
        interval, _ = gain_interval(runs[row], runs['student'], level)
    else:
        differences = paired_gains(runs[a], runs[b])
        if not differences:
            return None
        sign, interval = 1, paired_interval(differences, level)
    if np.isnan(interval.low):
        return None
    return (interval.low, interval.high) if sign > 0 else (-interval.high, -interval.low)


def summarize_proxy(proxy: str, rows: Sequence, records: List[dict], teachers: Dict[str, dict],
                    reference: Optional[str] = 'vkd', level: float = 0.95
                    ) -> Dict[str, RowSummary]:
    """:class:`RowSummary` of every row of ``rows`` of ``proxy`` with runs in ``records``, by
    row key: gains by :func:`gain_interval` at ``level``, differences to the ``reference`` row
    paired; ranks by :func:`~vkd_mmdet.utils.paired_interval.rank_by_comparisons` of every row
    against every other directly (:func:`_difference`), each comparison at Bonferroni's level
    over a row's comparisons, so that each row's rank, on its own, holds at ``level``."""
    students = _runs(records, proxy, 'student')
    gap = teachers[proxy]['AP'] - float(np.mean([r['AP'] for r in students]))
    proxy_rows = [r for r in rows if r.proxy == proxy and _runs(records, proxy, r.key)]
    runs = {r.key: _runs(records, proxy, r.key) for r in proxy_rows}
    references = runs.get(reference, [])
    gains = {key: gain_interval(row_runs, students, level)
             for key, row_runs in runs.items() if key != 'student'}
    keys = list(runs)
    each = 1 - (1 - level) / max(len(keys) - 1, 1)
    differences = {}
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            interval = _difference(a, b, runs, each)
            if interval is not None:
                differences[(a, b)] = interval
    ranks = rank_by_comparisons(keys, differences)
    out = {}
    for row in proxy_rows:
        gain, paired = gains.get(row.key, (None, None))
        versus = None if row.key in ('student', reference) else \
            paired_gains(runs[row.key], references) or None
        out[row.key] = RowSummary(
            row, runs[row.key], gain, paired, ranks[row.key],
            None if gain is None else (gain.mean / gap if gap > 0 else float('nan')), versus,
            None if versus is None else paired_interval(versus, level))
    return out


def methods_table(rows: Sequence, records: List[dict], teachers: Dict[str, dict],
                  proxies: Dict[str, object], tuned: Dict[str, float],
                  reference: Optional[str] = 'vkd', level: float = 0.95) -> str:
    """One markdown table per proxy: a line per row (:class:`~vkd_mmdet.benchmarks.rows.Row`)
    with AP, AP50, the gain over the student alone (paired: mean ± sample std over seeds; or,
    where the student alone ran seeds the row did not, the difference of the means:
    :func:`gain_interval`), its t-interval at ``level``, its rank from direct comparisons with
    every other row, ties shown (:func:`summarize_proxy`), the share of the teacher-student gap
    closed and the relative training time; where the proxy has
    runs of the ``reference`` row (a row key), each row's paired AP difference to that row, with
    its interval too."""
    out = []
    percent = f'{100 * level:g} % CI'
    for proxy in dict.fromkeys(r.proxy for r in rows):
        summaries = summarize_proxy(proxy, rows, records, teachers, reference, level)
        # The fastest of a row's runs: the one least slowed by whatever else the machine ran.
        student_time = min(r['train_time'] for r in _runs(records, proxy, 'student'))
        has_reference = reference in summaries
        reference_label = summaries[reference].row.label if has_reference else reference
        out += [f'**{proxies[proxy].label}**: teacher {100 * teachers[proxy]["AP"]:.1f} AP, '
                f'{100 * teachers[proxy]["AP50"]:.1f} AP50.\n',
                f'| method | config | loss weight | AP | AP50 | gain (AP) | {percent} | rank | '
                'gap closed | time |' +
                (f' vs {reference_label} (AP) | {percent} |' if has_reference else ''),
                '|---|---|---|---:|---:|---:|---:|---:|---:|---:|' +
                ('---:|---:|' if has_reference else '')]
        for key, summary in summaries.items():
            row, runs = summary.row, summary.runs
            weight = row.weights
            factor = tuned.get(f'{proxy}/{key}')
            if factor is not None and key != 'student':
                weight = f'tuned: {factor:g} x {weight}'
            if summary.gain is None:
                gain_text, gain_interval_text, closed = '-', '-', '-'
            else:
                # Welch's interval has no gain per seed: its mean alone, the interval beside it.
                gain_text = (mean_std(summary.paired, sign='+') if summary.paired is not None
                             else f'{100 * summary.gain.mean:+.1f}')
                gain_interval_text = interval_text(summary.gain)
                closed = 'n/a' if np.isnan(summary.closed) else f'{100 * summary.closed:.0f} %'
            relative = min(r['train_time'] for r in runs) / student_time
            line = (f'| {row.label} | `{row.config}` | {weight} | '
                    f'{mean_std([r["AP"] for r in runs])} | '
                    f'{mean_std([r["AP50"] for r in runs])} | {gain_text} | '
                    f'{gain_interval_text} | {summary.rank} | {closed} | {relative:.2f}x |')
            if has_reference:
                line += (' - | - |' if summary.versus is None else
                         f' {mean_std(summary.versus, sign="+")} | '
                         f'{interval_text(summary.versus_interval)} |')
            out.append(line)
        out.append('')
    return '\n'.join(out)


def resolution_table(rows: Sequence, records: List[dict], proxies: Dict[str, object],
                     reference: Optional[str] = 'vkd', half_width: float = 0.006,
                     level: float = 0.95) -> str:
    """The arithmetic behind the intervals, per proxy: each row's measured standard deviation
    of its paired gains (over the student alone, on their common seeds, and against
    ``reference``), the half-width of its paired t-interval and the seeds that standard deviation
    implies for a half-width of at most ``half_width`` (AP as a fraction: 0.006 is 0.6 AP):
    :func:`~vkd_mmdet.utils.paired_interval.seeds_for_half_width`. For the rows whose gain
    has Welch's interval (the student alone ran seeds they did not), also each row's own sample
    std, the half-width of that interval (what the methods table shows) and the seeds of the
    student alone it needs at the row's seeds:
    :func:`~vkd_mmdet.utils.welch_interval.second_seeds_for_half_width`."""
    out = []
    for proxy in dict.fromkeys(r.proxy for r in rows):
        students = _runs(records, proxy, 'student')
        references = _runs(records, proxy, reference) if reference else []
        reference_label = next((r.label for r in rows
                                if (r.proxy, r.key) == (proxy, reference)), reference)
        comparisons = [('student alone', students)] + \
            ([(reference_label, references)] if references else [])
        # each row's gain interval as the methods table computes it: Welch's or paired
        proxy_rows = [(row, runs, *gain_interval(runs, students, level)) for row in rows
                      if row.proxy == proxy and row.key != 'student' and
                      (runs := _runs(records, proxy, row.key))]
        welch = any(paired is None for *_, paired in proxy_rows)
        student_sd = float(np.std([r['AP'] for r in students], ddof=1)) if welch else 0.0
        out += [f'**{proxies[proxy].label}**: seeds for a {100 * level:g} % interval of '
                f'half-width ≤ {100 * half_width:g} AP, from each row\'s sample std (sd) of '
                f'paired differences: the fewest n with t({(1 + level) / 2:g}; n - 1) × sd / √n '
                f'≤ {100 * half_width:g}' +
                (f'; and, the student alone on {len(students)} seeds (sd {100 * student_sd:.2f} '
                 'AP), the half-width of each row\'s Welch interval over it and the fewest seeds '
                 'of the student alone that bring it within the bound at the row\'s seeds ("-": '
                 'none does; the row needs seeds of its own)' if welch else '') + '.\n',
                '| method | seeds | ' + ' | '.join(
                    f'sd vs {name} (AP) | half-width | seeds needed' for name, _ in comparisons) +
                (' | sd (AP) | Welch half-width | student seeds needed' if welch else '') + ' |',
                '|---|---:|' + '---:|---:|---:|' * (len(comparisons) + int(welch))]
        needed, widest, student_seeds = [], [], []
        for row, runs, gain, paired in proxy_rows:
            cells = [row.label, str(len(runs))]
            for _, others in comparisons:
                differences = paired_gains(runs, others)
                if row.key == reference and others is references or len(differences) < 2:
                    cells += ['-', '-', '-']
                    continue
                interval = paired_interval(differences, level)
                seeds = seeds_for_half_width(interval.sd, half_width, level)
                needed.append(seeds)
                cells += [f'{100 * interval.sd:.2f}', f'{100 * interval.half_width:.2f}',
                          str(seeds)]
            if welch:
                aps = [r['AP'] for r in runs]
                if paired is not None or len(aps) < 2:
                    cells += ['-', '-', '-']
                else:
                    sd = float(np.std(aps, ddof=1))
                    seeds = second_seeds_for_half_width(sd, len(aps), student_sd, half_width,
                                                        level)
                    widest.append(gain.half_width)
                    student_seeds.append(seeds)
                    cells += [f'{100 * sd:.2f}', f'{100 * gain.half_width:.2f}',
                              '-' if seeds is None else str(seeds)]
            out.append('| ' + ' | '.join(cells) + ' |')
        if needed:
            out += ['', f'Every paired interval of this proxy within ± {100 * half_width:g} AP, '
                    f'every row on the same seeds: {max(needed)} seeds.']
        if widest:
            out.append(f'Over the student alone on its {len(students)} seeds (Welch): the widest '
                       f'interval ± {100 * max(widest):.2f} AP; every one within ± '
                       f'{100 * half_width:g} AP at the rows\' seeds: ' +
                       ('not reachable with seeds of the student alone only.'
                        if None in student_seeds else
                        f'{max(student_seeds)} seeds of the student alone.'))
        out.append('')
    return '\n'.join(out)


def sweep_table(rows: Sequence, records: List[dict],
                teachers: Dict[str, dict]) -> Tuple[str, Dict[str, float]]:
    """AP on the tune split of every (row, weight factor) and each row's best factor (highest AP;
    ties go to the factor nearest 1). Returns the markdown table and ``{'proxy/key': factor}``."""
    factors = sorted({r['row'][2] for r in records if r['row'][1] != 'student'})
    best, out = {}, []
    for proxy in dict.fromkeys(r.proxy for r in rows):
        students = _runs(records, proxy, 'student')
        student_ap = 100 * float(np.mean([r['AP'] for r in students]))
        out += [f'**{proxy}** (tune split): student alone {student_ap:.1f} AP, teacher '
                f'{100 * teachers[proxy]["AP"]:.1f} AP (on the val split).\n',
                '| method | ' + ' | '.join(f'x{f:g}' for f in factors) + ' | best |',
                '|---|' + '---:|' * (len(factors) + 1)]
        for row in (r for r in rows if r.proxy == proxy and r.key != 'student'):
            ap = {r['row'][2]: r['AP'] for r in _runs(records, proxy, row.key)}
            if not ap:
                continue
            choice = max(ap, key=lambda f: (ap[f], -abs(np.log(f))))
            best[f'{proxy}/{row.key}'] = choice
            cells = [f'{100 * ap[f]:.1f}' if f in ap else '' for f in factors]
            out.append(f'| {row.label} | ' + ' | '.join(cells) + f' | x{choice:g} |')
        out.append('')
    return '\n'.join(out), best


def grad_norm_table(measured: List[dict], records: List[dict], rows: Sequence) -> str:
    """Gradient norms ``DistillGradNormHook`` wrote for each run of ``measured`` (first and last
    50 iterations, means): the distillation term's alone, and its ratio to the task loss's, both
    with respect to the student's backbone and neck; and the run's AP beside the AP of the same
    run without the hook (the hook must not change training: the two are equal)."""
    labels = {(r.proxy, r.key): r.label for r in rows}
    out = ['| method | ‖g distill‖ first 50 | last 50 | ‖g distill‖ / ‖g task‖ first 50 | '
           'last 50 | AP with hook | AP without |', '|---|---:|---:|---:|---:|---:|---:|']
    for run in measured:
        proxy, key = run['row'][0], run['row'][1].split('+')[0]
        log_dir = osp.dirname(osp.dirname(run['scalars']))
        with open(osp.join(log_dir, 'grad_norms.json')) as f:
            history = json.load(f)
        middle = (history[0]['iter'] + history[-1]['iter']) / 2
        halves = [[h for h in history if (h['iter'] < middle) == first] for first in (1, 0)]
        norm = [np.mean([h['distill'] for h in half]) for half in halves]
        ratio = [np.mean([h['distill'] / h['task'] for h in half]) for half in halves]
        plain = next((r['AP'] for r in records if tuple(r['row']) ==
                      (proxy, key, run['row'][2]) and r['seed'] == run['seed']), float('nan'))
        out.append(f'| {labels.get((proxy, key), key)} | {norm[0]:.3g} | {norm[1]:.3g} | '
                   f'{ratio[0]:.2f} | {ratio[1]:.2f} | {100 * run["AP"]:.1f} | '
                   f'{100 * plain:.1f} |')
    return '\n'.join(out) + '\n'
