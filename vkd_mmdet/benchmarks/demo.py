"""The CPU demo of VkD on the synthetic shapes set (``make demo``): data -> teacher -> student
alone and distilled, each seed, one run after the other in this process.

:func:`run_demo` is ``tools/run_demo.py`` (its docstring describes the steps).
"""
import argparse
import json
import os
import os.path as osp
import time
from typing import List

import torch

from ..testing import make_synthetic_coco
from .data_splits import data_kwargs, split_digests, with_data_root
from .demo_report import markdown_table, per_seed_table, plot, report, summarise
from .methods_page import write_page
from .rows import PROXIES, demo_config_dir
from .teacher_cache import train_teacher
from .training_run import startup_lines, train

#: The section of ``--markdown`` the demo writes (``make bench-accuracy``: docs/accuracy.md).
DEMO_SECTION = 'demo-report'


def demo_configs() -> dict:
    """The demo's default configs: ``teacher``, ``student`` and ``distill`` (a list)."""
    config_dir = demo_config_dir()
    return dict(teacher=osp.join(config_dir, PROXIES['fcos'].teacher),
                student=osp.join(config_dir, PROXIES['fcos'].student),
                distill=[osp.join(config_dir, 'vkd_fcos_r18-w32_r18-w16.py')])


def run_demo(args: argparse.Namespace) -> List[dict]:
    """Train what ``args`` (``tools/run_demo.py``'s options) asks for; write ``results.json``,
    ``results.md`` and ``demo.png`` into ``args.work_dir`` and, with ``args.markdown``, the page.
    Returns one summary row per model name (mean and std over seeds)."""
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    os.makedirs(args.work_dir, exist_ok=True)
    make_synthetic_coco(args.data_root, **data_kwargs(args), progress=True)
    data_root = args.data_root.rstrip('/') + '/'
    args.cfg_options = with_data_root(args.cfg_options, data_root)
    train_set, eval_set = split_digests(data_root)
    # The teacher is shared with the leaderboard (tools/bench_methods.py), which evaluates on
    # more images: its training set names it, a cached one is evaluated again when needed.
    teacher = train_teacher(args.teacher_config, osp.join(args.work_dir, 'teacher'),
                            args.teacher_iters, dict(train_set=train_set), args.cfg_options,
                            eval_set)
    records = [teacher]
    sets = dict(reuse=args.reuse_runs, train_set=train_set, eval_set=eval_set)
    for seed in args.seeds:
        records.append(train(args.student_config, osp.join(args.work_dir, f'student_s{seed}'),
                             args.student_iters, seed, 'student', args.cfg_options, **sets))
        for config in args.distill_configs:
            name = 'student+' + osp.basename(config).split('_')[0]
            records.append(train(config, osp.join(args.work_dir, f'{name}_s{seed}'),
                                 args.student_iters, seed, name, args.cfg_options,
                                 teacher_ckpt=teacher['checkpoint'],
                                 teacher=teacher['settings'], **sets))
    rows = summarise(records)
    table = markdown_table(rows)
    with open(osp.join(args.work_dir, 'results.json'), 'w') as f:
        json.dump(dict(rows=rows, runs=records), f, indent=1)
    with open(osp.join(args.work_dir, 'results.md'), 'w') as f:
        f.write(table)
    plot(rows, records, osp.join(args.work_dir, 'demo.png'))
    if args.markdown:
        os.makedirs(osp.dirname(osp.abspath(args.markdown)), exist_ok=True)
        # A marked section of the page: what is written around it (docs/accuracy.md's history
        # of the demo setting) stays.
        write_page(args.markdown, report(rows, records, args, time.perf_counter() - start),
                   section=DEMO_SECTION)
    print(table)
    print(per_seed_table(records))
    print('\n'.join(startup_lines(records)))
    print(f'plot: {osp.join(args.work_dir, "demo.png")}; total wall time '
          f'{time.perf_counter() - start:.0f} s')
    return rows
