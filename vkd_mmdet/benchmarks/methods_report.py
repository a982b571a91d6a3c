"""The leaderboard's tables (``tools/bench_methods.py``) from its runs' records.

A record (one training run, :func:`~vkd_mmdet.benchmarks.training_run.train`) holds ``AP``,
``AP50``, ``seed``, ``train_time`` and ``row``: ``(proxy, row key, loss-weight factor)``.
"""
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np


def _runs(records: List[dict], proxy: str, key: str) -> List[dict]:
    return [r for r in records if tuple(r['row'][:2]) == (proxy, key)]


def _mean_std(values: Sequence[float], scale: float = 100.0, digits: int = 1,
              sign: str = '') -> str:
    values = scale * np.asarray(values, dtype=float)
    text = f'{values.mean():{sign}.{digits}f}'
    return text + (f' ± {values.std(ddof=1):.{digits}f}' if len(values) > 1 else '')


def paired_gains(runs: List[dict], students: List[dict]) -> List[float]:
    """AP of each run minus the AP of the same seed's run in ``students`` (the student alone, or
    another reference row; seeds without one are left out)."""
    student_ap = {r['seed']: r['AP'] for r in students}
    return [r['AP'] - student_ap[r['seed']] for r in runs if r['seed'] in student_ap]


def methods_table(rows: Sequence, records: List[dict], teachers: Dict[str, dict],
                  proxies: Dict[str, object], tuned: Dict[str, float],
                  reference: Optional[str] = None) -> str:
    """One markdown table per proxy: a line per row (:class:`~vkd_mmdet.benchmarks.rows.Row`)
    with AP, AP50, the paired gain, the share of the teacher-student gap closed and the relative
    training time; with ``reference`` (a row key) also each row's paired AP difference to that
    row."""
    out = []
    for proxy in dict.fromkeys(r.proxy for r in rows):
        students = _runs(records, proxy, 'student')
        student_ap = float(np.mean([r['AP'] for r in students]))
        # The fastest of a row's runs: the one least slowed by whatever else the machine ran.
        student_time = min(r['train_time'] for r in students)
        gap = teachers[proxy]['AP'] - student_ap
        out += [f'**{proxies[proxy].label}**: teacher {100 * teachers[proxy]["AP"]:.1f} AP, '
                f'{100 * teachers[proxy]["AP50"]:.1f} AP50.\n',
                '| method | config | loss weight | AP | AP50 | gain (AP) | gap closed | time |' +
                (f' vs {reference} (AP) |' if reference else ''),
                '|---|---|---|---:|---:|---:|---:|---:|' + ('---:|' if reference else '')]
        references = _runs(records, proxy, reference) if reference else []
        for row in (r for r in rows if r.proxy == proxy):
            runs = _runs(records, proxy, row.key)
            if not runs:
                continue
            weight = row.weights
            factor = tuned.get(f'{proxy}/{row.key}')
            if factor is not None and row.key != 'student':
                weight = f'tuned: {factor:g} x {weight}'
            if row.key == 'student':
                gain_text, closed = '-', '-'
            else:
                gains = paired_gains(runs, students)
                gain_text = _mean_std(gains, sign='+')
                closed = f'{100 * np.mean(gains) / gap:.0f} %' if gap > 0 else 'n/a'
            relative = min(r['train_time'] for r in runs) / student_time
            line = (f'| {row.label} | `{row.config}` | {weight} | '
                    f'{_mean_std([r["AP"] for r in runs])} | '
                    f'{_mean_std([r["AP50"] for r in runs])} | {gain_text} | {closed} | '
                    f'{relative:.2f}x |')
            if reference:
                line += (' - |' if row.key in ('student', reference) else
                         f' {_mean_std(paired_gains(runs, references), sign="+")} |')
            out.append(line)
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
