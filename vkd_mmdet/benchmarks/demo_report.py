"""Tables and plot of the CPU demo (``tools/run_demo.py``) from its runs' records.

A record (one training run) holds ``name``, ``config``, ``seed``, ``iters``, ``AP``, ``AP50``,
``train_time`` and ``scalars``: the path of the run's mmengine ``scalars.json``, where the loss
curves are read from.
"""
import argparse
import os
from typing import List

import numpy as np

from .training_run import read_scalars


def summarise(records: List[dict]) -> List[dict]:
    """One row per model name: mean and std over seeds of AP, AP50 and training time."""
    rows = []
    for name in dict.fromkeys(r['name'] for r in records):
        runs = [r for r in records if r['name'] == name]
        row = dict(name=name, config=runs[0]['config'], seeds=[r['seed'] for r in runs],
                   iters=runs[0]['iters'])
        for key in ('AP', 'AP50', 'train_time'):
            values = np.array([r[key] for r in runs], dtype=float)
            row[key] = float(values.mean())
            row[f'{key}_std'] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        rows.append(row)
    return rows


def markdown_table(rows: List[dict]) -> str:
    """The results as a markdown table (``mean ± std`` where there are several seeds)."""

    def cell(row: dict, key: str, scale: float, digits: int) -> str:
        text = f'{row[key] * scale:.{digits}f}'
        return text + (f' ± {row[key + "_std"] * scale:.{digits}f}'
                       if len(row['seeds']) > 1 else '')

    lines = ['| model | config | iters | seeds | AP | AP50 | train time (s) |',
             '|---|---|---:|---|---:|---:|---:|']
    for row in rows:
        seeds = ','.join(str(s) for s in row['seeds'])
        lines.append(f"| {row['name']} | `{row['config']}` | {row['iters']} | {seeds} | "
                     f"{cell(row, 'AP', 100, 1)} | {cell(row, 'AP50', 100, 1)} | "
                     f"{cell(row, 'train_time', 1, 0)} |")
    return '\n'.join(lines) + '\n'


def per_seed_table(records: List[dict]) -> str:
    """AP of every student run per seed, and each distilled run's gain over the student alone
    of the same seed (a paired difference: same seed, same data order)."""
    names = [n for n in dict.fromkeys(r['name'] for r in records) if n != 'teacher']
    by_key = {(r['name'], r['seed']): r['AP'] for r in records}
    seeds = sorted({r['seed'] for r in records if r['name'] == 'student'})
    head = ['seed'] + [f'{n} AP' for n in names] + [f'{n} − student' for n in names[1:]]
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---:|' * len(head)]
    gains = {n: [] for n in names[1:]}
    for seed in seeds:
        cells = [str(seed)] + [f'{100 * by_key[(n, seed)]:.1f}' for n in names]
        for n in names[1:]:
            gains[n].append(100 * (by_key[(n, seed)] - by_key[('student', seed)]))
            cells.append(f'{gains[n][-1]:+.1f}')
        lines.append('| ' + ' | '.join(cells) + ' |')
    if len(seeds) > 1:
        cells = ['mean ± std', *([''] * len(names))]
        cells += [f'{np.mean(g):+.1f} ± {np.std(g, ddof=1):.1f}' for g in gains.values()]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def report(rows: List[dict], records: List[dict], args: argparse.Namespace,
           wall_time: float) -> str:
    """The markdown page: settings, the summary table and the per-seed AP table."""
    return (f'# Accuracy of the CPU demo (synthetic shapes set)\n\n'
            f'Written by `tools/run_demo.py` (`make bench-accuracy`). Data: '
            f'{args.num_train} train / {args.num_val} val images, sides '
            f'{args.image_size[0]}-{args.image_size[1]} px, 1-{args.max_objects} shapes each of '
            f'{args.object_size[0]:g}-{args.object_size[1]:g} of the shorter side. Teacher: '
            f'{args.teacher_iters} iterations, seed 0; every student run: '
            f'{args.student_iters} iterations; student seeds {args.seeds}. AP: COCO box AP '
            f'(mmdet `CocoMetric`) on the val split, ×100; mean ± sample std over seeds. '
            f'Train time: training iterations (data loading included, validation excluded), '
            f'wall clock, '
            f'{args.threads} torch thread(s), {os.cpu_count()} CPU(s) seen; the whole run took '
            f'{wall_time / 60:.1f} min (teacher reused if it was cached).\n\n'
            f'{markdown_table(rows)}\n{per_seed_table(records)}')


def plot(rows: List[dict], records: List[dict], path: str) -> None:
    """AP / AP50 bars (error bars: std over seeds) and the loss curves of the first seed (from
    each run's ``scalars.json``; a term the student alone does not log is a distillation term)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, (ax_ap, ax_loss) = plt.subplots(1, 2, figsize=(11, 4))
    x = np.arange(len(rows))
    for offset, key in ((-0.2, 'AP'), (0.2, 'AP50')):
        ax_ap.bar(x + offset, [100 * r[key] for r in rows], 0.4, label=key,
                  yerr=[100 * r[f'{key}_std'] for r in rows], capsize=3)
    ax_ap.set_xticks(x, [r['name'] for r in rows], rotation=15)
    ax_ap.set_ylabel('COCO box AP (val)')
    ax_ap.legend()
    ax_ap.set_title('accuracy')
    first_seed = {}
    for record in records:
        if record['name'] != 'teacher':
            first_seed.setdefault(record['name'], record)
    curves = {name: read_scalars(record['scalars'])[0] for name, record in first_seed.items()}
    task_keys = {k for k in curves.get('student', [{}])[0] if k.startswith('loss_')}
    for name, log in curves.items():
        steps = [e['step'] for e in log]
        task = np.sum([[e[k] for e in log] for k in task_keys & set(log[0])], axis=0)
        line, = ax_loss.plot(steps, task, label=f'{name}: detection loss')
        for key in sorted(k for k in log[0] if k.startswith('loss_') and k not in task_keys):
            ax_loss.plot(steps, [e[key] for e in log], linestyle=':', color=line.get_color(),
                         label=f'{name}: {key}')
    ax_loss.set_xlabel('iteration')
    ax_loss.set_yscale('log')
    ax_loss.legend(fontsize=7)
    ax_loss.set_title('training losses (first seed, logging-window means)')
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
