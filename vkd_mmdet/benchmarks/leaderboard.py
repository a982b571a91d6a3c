"""The leaderboard of the distillation methods on the CPU demo proxies (``make bench-methods``).

:func:`run_leaderboard` is ``tools/bench_methods.py`` (its docstring describes the protocol):
the teachers, the task list (every row of :mod:`~vkd_mmdet.benchmarks.rows` for every seed, the
same iterations, seed and data order for all rows), the process pool, the tables and the page.
"""
import argparse
import json
import os
import os.path as osp
import shlex
import subprocess
import sys
import time
from typing import Dict, List, Sequence

from mmengine.config import Config

from ..testing import make_synthetic_coco
from ..utils import tools_dir
from .config_readmes import write_config_readmes
from .data_splits import SPLITS, data_kwargs, make_tune_split, split_digests, with_data_root
from .methods_page import page, page_section, tuned_section, write_page
from .methods_report import grad_norm_table, methods_table, resolution_table, sweep_table
from .per_seed_file import write_per_seed_csv
from .process_pool import run_all, train_teachers
from .rows import (
    CENTER_ROWS,
    DIAGNOSIS_REFERENCE,
    DIAGNOSIS_ROWS,
    GRAD_NORM_HOOK,
    GRAD_SUFFIX,
    ND_CONFIG,
    PROXIES,
    ROWS,
    SWEEP_ROWS,
    Row,
)


def weight_options(config: str, factor: float) -> dict:
    """``--cfg-options`` that scale every loss weight of a distillation config by ``factor``."""
    losses = Config.fromfile(config).model.get('distill_losses') or {}
    options = {}
    for name, loss in losses.items():
        if 'loss_weight' not in loss:
            raise ValueError(f'{config}: model.distill_losses.{name} sets no loss_weight; the '
                             'weight sweep scales stated weights only')
        options[f'model.distill_losses.{name}.loss_weight'] = factor * loss['loss_weight']
    return options


def class_centers(args: argparse.Namespace, teacher: dict, split: str, out: str) -> str:
    """The two-stage teacher's class centres, by ``tools/compute_class_centers.py`` (cached)."""
    train_ann, _ = SPLITS[split][0]
    options = [f'model.teacher_ckpt={teacher["checkpoint"]}',
               f'train_dataloader.dataset.data_root={args.data_root.rstrip("/")}/',
               f'train_dataloader.dataset.ann_file={train_ann}']
    command = [sys.executable, osp.join(tools_dir(), 'compute_class_centers.py'),
               osp.join(args.config_dir, ND_CONFIG), '--out', out, '--device', 'cpu',
               '--num-workers', '0', '--batch-size', '8', '--cfg-options', *options]
    settings = dict(teacher=teacher['settings'], ann=train_ann)
    stamp = out + '.json'
    if osp.isfile(out) and osp.isfile(stamp):
        with open(stamp) as f:
            if json.load(f) == settings:
                print(f'class centres: reusing {out}')
                return out
    print('class centres: ' + shlex.join(command))
    subprocess.run(command, check=True)
    with open(stamp, 'w') as f:
        json.dump(settings, f)
    return out


def grad_norm_tasks(tasks: List[dict], seed: int) -> List[dict]:
    """``seed``'s run of every feature method of ``tasks`` again, with ``GRAD_NORM_HOOK``."""
    out = []
    for task in tasks:
        proxy, key, factor = task['row']
        if key not in SWEEP_ROWS or task['seed'] != seed:
            continue
        hooks = list(Config.fromfile(task['config']).get('custom_hooks', []))
        options = dict(task['cfg_options'], custom_hooks=hooks + [GRAD_NORM_HOOK])
        out.append(dict(task, row=(proxy, key + GRAD_SUFFIX, factor), cfg_options=options,
                        name=task['name'] + GRAD_SUFFIX,
                        work_dir=task['work_dir'].replace(f'_s{seed}', f'_grad-norms_s{seed}')))
    return out


def selected_rows(args: argparse.Namespace, tuned: Dict[str, float]) -> List[Row]:
    """The rows this invocation runs: ``--rows``, else the mode's default (every row; the
    sweep's feature methods; the rows ``--weights-from`` tuned; the diagnosis' variants and
    references), the student alone always, of the proxies ``--proxies`` names; every row of
    ``--row-seeds`` must be among them."""
    if args.diagnosis:
        default_rows = [*DIAGNOSIS_REFERENCE, *(r.key for r in DIAGNOSIS_ROWS)]
    elif tuned:  # the rows the sweep tuned ('proxy/key')
        default_rows = [name.split('/')[1] for name in tuned]
    else:
        default_rows = SWEEP_ROWS if args.sweep_weights else [r.key for r in ROWS]
    wanted = {'student', *(args.rows or default_rows)}
    rows = [r for r in ROWS + DIAGNOSIS_ROWS if r.key in wanted and r.proxy in args.proxies]
    unknown = set(args.row_seeds or ()) - {r.key for r in rows}
    if unknown:
        raise ValueError(f'--row-seeds {" ".join(sorted(unknown))}: not among the rows of this '
                         f'run ({" ".join(r.key for r in rows)})')
    return rows


def student_tasks(args: argparse.Namespace, rows: Sequence[Row], split: str, options: dict,
                  teachers: Dict[str, dict], tuned: Dict[str, float],
                  center_options: dict) -> List[dict]:
    """One :func:`~vkd_mmdet.benchmarks.training_run.train` task (plus its ``row``:
    ``(proxy, key, loss-weight factor)``) per seed (in increasing order), row and weight factor:
    every row on ``args.seeds``, the rows of ``args.row_seeds`` (``{row key: seeds}``) on those
    seeds too."""
    extra = args.row_seeds or {}
    train_set, eval_set = split_digests(args.data_root, split)
    factors = args.sweep_factors if args.sweep_weights else [1.0]
    row_seeds = {r.key: set(args.seeds[:1] if args.sweep_weights else args.seeds) |
                 set(extra.get(r.key, ())) for r in rows}
    tasks = []
    for seed in sorted(set().union(*row_seeds.values())):
        for row in (r for r in rows if seed in row_seeds[r.key]):
            for factor in ([1.0] if row.key == 'student' else factors):
                factor = tuned.get(f'{row.proxy}/{row.key}', factor)
                config = osp.join(args.config_dir, row.config)
                task_options = dict(options)
                if row.key != 'student':
                    task_options.update(weight_options(config, factor))
                if row.key in CENTER_ROWS:
                    task_options.update(center_options)
                task_options.update(row.options or {})
                suffix = '' if factor == 1.0 else f'_x{factor:g}'
                tasks.append(dict(
                    row=(row.proxy, row.key, factor), config=config,
                    work_dir=osp.join(args.work_dir, split, row.proxy,
                                      f'{row.key}{suffix}_s{seed}'),
                    iters=args.student_iters, seed=seed, name=f'{row.key}{suffix}',
                    cfg_options=task_options, train_set=train_set, eval_set=eval_set,
                    **({} if row.key == 'student' else dict(
                        teacher_ckpt=teachers[row.proxy]['checkpoint'],
                        teacher=teachers[row.proxy]['settings']))))
    return tasks


def run_leaderboard(args: argparse.Namespace, command: str) -> dict:
    """Train and table what ``args`` (``tools/bench_methods.py``'s options) asks for; write the
    tables and records into ``<work_dir>/<split>/`` and, with ``args.markdown``, the page, which
    prints ``command`` as the invocation. Returns the teachers' and runs' records."""
    start = time.perf_counter()
    data = data_kwargs(args)
    make_synthetic_coco(args.data_root, **data, progress=True)
    data_root = args.data_root.rstrip('/') + '/'
    split = 'tune' if args.sweep_weights else 'val'
    if split == 'tune':
        make_tune_split(data_root, args.tune_fraction)
    options = with_data_root(args.cfg_options, data_root, split)
    teacher_options = with_data_root(args.cfg_options, data_root)
    tuned = {}
    if args.weights_from:
        with open(args.weights_from) as f:
            tuned = json.load(f)['best']
    if args.diagnosis:
        args.proxies = ['fcos']
    rows = selected_rows(args, tuned)

    # A teacher is its training set's (the val split's): reused whatever the evaluation set.
    teacher_train, teacher_eval = split_digests(data_root)
    teachers = train_teachers([
        (proxy, dict(config=osp.join(args.config_dir, PROXIES[proxy].teacher),
                     iters=(PROXIES[proxy].teacher_iters if args.teacher_iters is None
                            else args.teacher_iters),
                     data=dict(train_set=teacher_train),
                     cfg_options=teacher_options, eval_set=teacher_eval,
                     work_dir=(osp.join(args.demo_work_dir, 'teacher') if proxy == 'fcos' else
                               osp.join(args.work_dir, f'teacher_{proxy}'))))
        for proxy in args.proxies], args.jobs, args.threads)
    for proxy, teacher in teachers.items():
        print(f'teacher {proxy}: AP {100 * teacher["AP"]:.1f} ({teacher["checkpoint"]})')
    center_options = {}
    if any(r.key in CENTER_ROWS for r in rows):
        centers = class_centers(args, teachers['faster-rcnn'], split, osp.join(
            args.work_dir, 'class_centers', f'faster-rcnn_r18-w32_{split}.pth'))
        center_options = {'model.distill_losses.nd.class_centers': centers}

    tasks = student_tasks(args, rows, split, options, teachers, tuned, center_options)
    if args.diagnosis:
        tasks += grad_norm_tasks(tasks, args.seeds[0])
    records = run_all(tasks, args.jobs, args.threads, args.reuse_runs)
    wall_time = time.perf_counter() - start
    results = dict(teachers=teachers, runs=records, wall_time=wall_time, split=split,
                   command=command)
    out_dir = osp.join(args.work_dir, split)
    os.makedirs(out_dir, exist_ok=True)
    if args.sweep_weights:
        name = 'sweep'
        table, results['best'] = sweep_table(rows, records, teachers)
    elif args.diagnosis:
        name = 'diagnosis'
        measured = [r for r in records if r['row'][1].endswith(GRAD_SUFFIX)]
        table = methods_table(rows, records, teachers, PROXIES, {}, reference='vkd') + '\n' + \
            grad_norm_table(measured, records, rows)
    else:
        name = 'methods_tuned' if tuned else 'methods'
        table = methods_table(rows, records, teachers, PROXIES, tuned) + '\n' + \
            resolution_table(rows, records, PROXIES)
    with open(osp.join(out_dir, f'{name}.json'), 'w') as f:
        json.dump(results, f, indent=1)
    with open(osp.join(out_dir, f'{name}.md'), 'w') as f:
        f.write(table)
    write_per_seed_csv(osp.join(out_dir, f'{name}_per_seed.csv'), records, teachers, rows)
    if args.markdown:
        os.makedirs(osp.dirname(osp.abspath(args.markdown)), exist_ok=True)
        # A run of other proxies than the page's is a section of it (kept by the next page run
        # unless it runs those proxies too), with its own per-seed file.
        section = page_section(args.proxies, bool(tuned), args.diagnosis)
        # beside the page: <page>_per_seed.csv, <page>_tuned_per_seed.csv, ...
        per_seed = osp.splitext(args.markdown)[0] + (
            '_tuned' if tuned else f'_{section}' if section else '') + '_per_seed.csv'
        write_per_seed_csv(per_seed, records, teachers, rows)
        if tuned:
            text = tuned_section(args, command, table, records, osp.basename(per_seed))
        else:
            title = None if section is None else '## ' + '; '.join(
                PROXIES[p].label for p in args.proxies)
            text = page(args, command, table, teachers, wall_time, records,
                        osp.basename(per_seed), title)
        write_page(args.markdown, text, section, ran_proxies=args.proxies)
        if args.config_readmes:
            for path in write_config_readmes(args.config_readmes, args.markdown, ROWS, PROXIES):
                print(f'proxy results written into {path}')
    print(table)
    print(f'total wall time {wall_time / 60:.1f} min')
    return results
