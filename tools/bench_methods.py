"""Leaderboard of the distillation methods on the CPU demo proxies (``make bench-methods``).

    python tools/bench_methods.py [--seeds 0 1 2] [--jobs 2] [--reuse-runs] [--markdown FILE]
    python tools/bench_methods.py --sweep-weights [--sweep-factors 0.25 0.5 1 2.5]
    python tools/bench_methods.py --weights-from work_dirs/bench_methods/tune/sweep.json
    python tools/bench_methods.py --diagnosis [--seeds 0 1 2]

On ``tools/run_demo.py``'s synthetic shapes set, with its pieces (data generator, teacher cache,
one training run with mmengine's ``Runner``, COCO evaluation):

1. two proxies: the demo's FCOS pair (one-stage; the teacher is ``make demo``'s, cached in
   ``--demo-work-dir``) and a CPU-sized Faster R-CNN pair (two-stage; its teacher is trained once
   into ``<work-dir>/teacher_faster-rcnn``); the ND and KD++ rows get their teacher's class
   centres from ``tools/compute_class_centers.py``, run as a user would;
2. every row of ``ROWS`` (the student alone, each method, VkD's ablations) for every seed, the
   same iterations, seed and data order for all rows, ``--jobs`` runs at a time (one process
   each, ``--threads`` torch threads), each printed with an ETA when it finishes;
3. the table (AP, AP50, paired gain over the same-seed student alone, share of the teacher-student
   gap closed, training time relative to the student alone) into ``<work-dir>/methods.md`` and,
   with ``--markdown``, a page with the setting, the command and the total run time.

Tuning (never on the reported split): ``--sweep-weights`` trains one seed of every feature
method with each of its loss weights scaled by ``--sweep-factors`` (the same budget for every
method) on the ``tune`` split: ``--tune-fraction`` of the training images are held out as its
evaluation set, the rest train. It writes ``<work-dir>/tune/sweep.json`` with every AP and each
row's best factor; ``--weights-from`` that file then runs the reported table with those factors
(with ``--markdown``: its own section of the page, which the paper-weights run keeps).

Diagnosis (``--diagnosis``, docs/vkd_diagnosis.md): ``DIAGNOSIS_ROWS`` (VkD with one change each)
beside ``DIAGNOSIS_REFERENCE`` on the val split, plus seed 0 of every feature method again with
``DistillGradNormHook``; tables into ``<work-dir>/val/diagnosis.md``.
"""
import argparse
import json
import os
import os.path as osp
import shlex
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence

import numpy as np
import torch
from mmengine.config import Config, DictAction

TOOLS = osp.dirname(osp.abspath(__file__))
sys.path.insert(0, TOOLS)
sys.path.insert(0, osp.join(TOOLS, 'analysis'))
import run_demo  # noqa: E402
from methods_report import grad_norm_table, methods_table, sweep_table  # noqa: E402

CONFIG_DIR = run_demo.CONFIG_DIR


class Row(NamedTuple):
    """One line of the table: a config of a proxy, and where its loss weights come from."""
    key: str  # run folder prefix, and the name --rows selects
    proxy: str
    label: str
    config: str
    weights: str  # 'paper' (published), 'ours', or what it inherits
    options: Optional[dict] = None  # config overrides of the row (the VkD diagnosis variants)


class Proxy(NamedTuple):
    teacher: str
    student: str
    label: str


PROXIES: Dict[str, Proxy] = {
    'fcos': Proxy('teacher_fcos_r18-w32.py', 'student_fcos_r18-w16.py',
                  'one-stage: FCOS R18-w32 -> R18-w16, P3-P5'),
    'faster-rcnn': Proxy('teacher_faster-rcnn_r18-w32.py', 'student_faster-rcnn_r18-w16.py',
                         'two-stage: Faster R-CNN R18-w32 -> R18-w16, P2-P4'),
}
_ONE = '_fcos_r18-w32_r18-w16.py'
_TWO = '_faster-rcnn_r18-w32_r18-w16.py'
ROWS: List[Row] = [
    Row('student', 'fcos', 'student alone', PROXIES['fcos'].student, '-'),
    Row('fitnet', 'fcos', 'FitNet', 'fitnet' + _ONE, 'ours (1)'),
    Row('cwd', 'fcos', 'CWD', 'cwd' + _ONE, 'paper (MMRazor: tau 1, 10)'),
    Row('pkd', 'fcos', 'PKD', 'pkd' + _ONE, 'paper (6, of 6-10)'),
    Row('srd', 'fcos', 'SRD', 'srd' + _ONE, 'paper (2, ImageNet recipe)'),
    Row('diffkd', 'fcos', 'DiffKD', 'diffkd' + _ONE, 'paper (1, 1, 1)'),
    Row('rtk', 'fcos', 'RTK', 'rtk' + _ONE, "AFD's beta (200); keys ours"),
    Row('fgd', 'fcos', 'FGD', 'fgd' + _ONE, 'paper (FCOS: 1.6e-3, 8e-4, 8e-4, 8e-6, T 0.8)'),
    Row('mgd', 'fcos', 'MGD', 'mgd' + _ONE, 'paper (one-stage: 2e-5, lambda 0.65)'),
    Row('vkd', 'fcos', 'VkD', 'vkd' + _ONE, "authors' detection code (4)"),
    Row('vkd-linear', 'fcos', 'VkD: free linear projector + norm.', 'vkd-linear' + _ONE,
        "VkD's (4)"),
    Row('vkd-nonorm', 'fcos', 'VkD: orthogonal projector, no norm.', 'vkd-nonorm' + _ONE,
        "VkD's (4)"),
    Row('vkd-linear-nonorm', 'fcos', 'VkD: linear projector, no norm.',
        'vkd-linear-nonorm' + _ONE, "VkD's (4)"),
    Row('vkd-cayley', 'fcos', 'VkD: cayley map', 'vkd-cayley' + _ONE, "VkD's (4)"),
    Row('vkd-householder', 'fcos', 'VkD: householder map', 'vkd-householder' + _ONE,
        "VkD's (4)"),
    Row('student', 'faster-rcnn', 'student alone', PROXIES['faster-rcnn'].student, '-'),
    Row('vkd', 'faster-rcnn', 'VkD', 'vkd' + _TWO, "authors' detection code (4)"),
    Row('nd', 'faster-rcnn', 'ND', 'nd' + _TWO, 'paper (KD++: 1.5)'),
    Row('kdpp', 'faster-rcnn', 'KD++', 'kdpp' + _TWO, 'paper (ND 1.5, KL 1)'),
]
# VkD's diagnosis (--diagnosis, docs/vkd_diagnosis.md): one change each to the VkD row, compared
# with the leaderboard's rows of DIAGNOSIS_REFERENCE (same seeds, their runs reused).
_VKD = 'model.distill_losses.vkd.'
DIAGNOSIS_ROWS: List[Row] = [
    # smooth-L1 (beta 1) of standardised features is ~0.5 x MSE: weight 6 is PKD's 6 x MSE / 2.
    Row('vkd-w6', 'fcos', "VkD at PKD's loss scale", 'vkd' + _ONE, '6',
        {_VKD + 'loss_weight': 6.0}),
    Row('vkd-linear-w6', 'fcos', "VkD: free linear projector, PKD's loss scale",
        'vkd-linear' + _ONE, '6', {_VKD + 'loss_weight': 6.0}),
    # beta 4, weight 16: the same 2 x d^2 as beta 1, weight 4 below |d| = 1, quadratic up to 4.
    Row('vkd-beta4', 'fcos', 'VkD: smooth-L1 beta 4 (MSE-like, same scale)', 'vkd' + _ONE,
        '16 (beta 4)', {_VKD + 'beta': 4.0, _VKD + 'loss_weight': 16.0}),
    Row('vkd-plr10', 'fcos', 'VkD: projector learning rate x10', 'vkd' + _ONE, "VkD's (4)",
        {'optim_wrapper.paramwise_cfg.custom_keys': {
            'projector.raw_weight': dict(decay_mult=0.0, lr_mult=10.0)}}),
    Row('vkd-p3p4', 'fcos', 'VkD: P3-P4 only (no P5)', 'vkd' + _ONE, "VkD's (4)",
        {_VKD + 'strides': [8, 16]}),
    Row('vkd-padstats', 'fcos', 'VkD: statistics and mean over the padding too', 'vkd' + _ONE,
        "VkD's (4)", {_VKD + 'ignore_padding': False}),
]
# The gradient norms each feature method sends into the student (seed 0, first and last 50
# iterations), by DistillGradNormHook: it leaves the training run unchanged.
GRAD_NORM_HOOK = dict(type='DistillGradNormHook', ranges=[[0, 50], [-50, 0]])
# Issue 19's feature methods: what --sweep-weights tunes unless --rows says otherwise.
SWEEP_ROWS = ('vkd', 'fitnet', 'cwd', 'pkd', 'srd', 'diffkd', 'rtk')
CENTER_ROWS = ('nd', 'kdpp')  # rows that need the teacher's class centres
DIAGNOSIS_REFERENCE = ('student', *SWEEP_ROWS, 'vkd-linear')
ND_CONFIG = 'nd' + _TWO


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/bench_methods')
    parser.add_argument('--demo-work-dir', default='work_dirs/demo',
                        help="make demo's work dir: its FCOS teacher is reused")
    parser.add_argument('--data-root', default='data/synthetic_coco')
    parser.add_argument('--config-dir', default=CONFIG_DIR,
                        help='folder of the demo configs (the names of ROWS and PROXIES)')
    parser.add_argument('--proxies', nargs='+', choices=list(PROXIES), default=list(PROXIES))
    parser.add_argument('--rows', nargs='+', help='row keys to run (default: all; with '
                        f'--sweep-weights: {" ".join(SWEEP_ROWS)}; with --weights-from: the rows '
                        'it tuned); the student alone always runs')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--teacher-iters', type=int, default=600)
    parser.add_argument('--student-iters', type=int, default=500)
    parser.add_argument('--jobs', type=int, default=2, help='runs in parallel (processes)')
    parser.add_argument('--threads', type=int, default=1, help='torch threads per run')
    parser.add_argument('--reuse-runs', action='store_true',
                        help='reuse finished runs of the same config, seed, iterations, options')
    parser.add_argument('--markdown', help='write the page (setting, commands, table) here')
    parser.add_argument('--sweep-weights', action='store_true',
                        help='tune: one seed per (row, factor) on the held-out tune split')
    parser.add_argument('--sweep-factors', type=float, nargs='+', default=[0.25, 0.5, 1.0, 2.5],
                        help='multipliers of every loss weight of a row (default spans 10x)')
    parser.add_argument('--tune-fraction', type=float, default=0.2,
                        help='share of the training images held out as the tune split')
    parser.add_argument('--weights-from', help="a sweep.json: run each row at its best factor")
    parser.add_argument('--diagnosis', action='store_true',
                        help="VkD's diagnosis: DIAGNOSIS_ROWS and the reference rows on the val "
                        'split, and every feature method once with DistillGradNormHook')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='overrides applied to every config (teachers, students)')
    run_demo.add_data_args(parser)
    args = parser.parse_args(argv)
    if args.sweep_weights and args.weights_from:
        parser.error('--sweep-weights tunes, --weights-from reports tuned weights: give one')
    if args.diagnosis and (args.sweep_weights or args.weights_from):
        parser.error('--diagnosis runs at the shipped weights: no --sweep-weights/--weights-from')
    return args


def make_tune_split(data_root: str, fraction: float, seed: int = 0) -> None:
    """Hold out ``fraction`` of the training images (seeded) as the tune split's evaluation set:
    ``instances_tune-val.json``; the rest is ``instances_tune-train.json``. Images stay in
    ``train/``; the val split is untouched."""
    with open(osp.join(data_root, 'annotations', 'instances_train.json')) as f:
        coco = json.load(f)
    ids = [image['id'] for image in coco['images']]
    held_out = set(np.random.default_rng(seed).permutation(ids)[:round(fraction * len(ids))]
                   .tolist())
    if not 0 < len(held_out) < len(ids):
        raise ValueError(f'--tune-fraction {fraction}: holds out {len(held_out)} of {len(ids)} '
                         'training images; expected at least one and not all')
    for name, keep in (('tune-train', lambda i: i not in held_out),
                       ('tune-val', held_out.__contains__)):
        part = dict(coco, images=[im for im in coco['images'] if keep(im['id'])],
                    annotations=[a for a in coco['annotations'] if keep(a['image_id'])])
        with open(osp.join(data_root, 'annotations', f'instances_{name}.json'), 'w') as f:
            json.dump(part, f)


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
    train_ann, _ = run_demo.SPLITS[split][0]
    options = [f'model.teacher_ckpt={teacher["checkpoint"]}',
               f'train_dataloader.dataset.data_root={args.data_root.rstrip("/")}/',
               f'train_dataloader.dataset.ann_file={train_ann}']
    command = [sys.executable, osp.join(TOOLS, 'compute_class_centers.py'),
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


GRAD_SUFFIX = '+grad-norms'


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


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def _quiet(func: Callable[..., dict], task: dict) -> dict:
    """``func(**task)`` in a worker process, its output into ``<work_dir>/stdout.log``."""
    os.makedirs(task['work_dir'], exist_ok=True)
    with open(osp.join(task['work_dir'], 'stdout.log'), 'w') as log:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            return func(**task)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)


def run_all(tasks: List[dict], jobs: int, threads: int, reuse: bool) -> List[dict]:
    """Run ``tasks`` (``run_demo.train`` arguments + ``row``), ``jobs`` at a time; print one line
    per finished run with the ETA of the rest (each pending run costs the mean wall time of the
    finished runs of its row, else of its proxy, else of all)."""
    records: List[Optional[dict]] = [None] * len(tasks)
    pending = []
    for i, task in enumerate(tasks):
        key = run_demo.run_key(task['config'], task['seed'], task['iters'], task['cfg_options'])
        record = run_demo.finished_run(task['work_dir'], key) if reuse else None
        if record is None:
            pending.append(i)
        else:
            records[i] = dict(record, row=task['row'])
    print(f'{len(tasks) - len(pending)} of {len(tasks)} runs reused, {len(pending)} to train '
          f'({jobs} at a time)')
    start = time.perf_counter()

    def estimate(task: dict) -> float:
        times = [[r['wall_time'] for r, t in zip(records, tasks)
                  if r is not None and 'wall_time' in r and match(t)]
                 for match in (lambda t: t['row'] == task['row'],
                               lambda t: t['row'][0] == task['row'][0], lambda t: True)]
        return next((float(np.mean(t)) for t in times if t), float('nan'))

    if not pending:
        return records
    with ProcessPoolExecutor(min(jobs, len(pending)), mp_context=get_context('spawn'),
                             initializer=_init_worker, initargs=(threads,)) as pool:
        futures = {pool.submit(_quiet, run_demo.train,
                               {k: v for k, v in tasks[i].items() if k != 'row'}): i
                   for i in pending}
        for done, future in enumerate(as_completed(futures), 1):
            i = futures[future]
            records[i] = dict(future.result(), row=tasks[i]['row'])
            left = [tasks[j] for j in pending if records[j] is None]
            eta = sum(estimate(t) for t in left) / jobs
            print(f'[{done}/{len(pending)}] {tasks[i]["row"][0]} {tasks[i]["name"]} seed '
                  f'{tasks[i]["seed"]}: AP {100 * records[i]["AP"]:.1f}, '
                  f'{records[i]["wall_time"]:.0f} s; elapsed '
                  f'{(time.perf_counter() - start) / 60:.1f} min, ETA {eta / 60:.1f} min',
                  flush=True)
    return records


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    start = time.perf_counter()
    data = run_demo._data_kwargs(args)
    run_demo.make_synthetic_coco(args.data_root, **data, progress=True)
    data_root = args.data_root.rstrip('/') + '/'
    split = 'tune' if args.sweep_weights else 'val'
    if split == 'tune':
        make_tune_split(data_root, args.tune_fraction)
    options = run_demo._with_data_root(args.cfg_options, data_root, split)
    teacher_options = run_demo._with_data_root(args.cfg_options, data_root)
    tuned = {}
    if args.weights_from:
        with open(args.weights_from) as f:
            tuned = json.load(f)['best']
    if args.diagnosis:
        args.proxies = ['fcos']
        default_rows = [*DIAGNOSIS_REFERENCE, *(r.key for r in DIAGNOSIS_ROWS)]
    elif tuned:  # the rows the sweep tuned ('proxy/key')
        default_rows = [name.split('/')[1] for name in tuned]
    else:
        default_rows = SWEEP_ROWS if args.sweep_weights else [r.key for r in ROWS]
    wanted = {'student', *(args.rows or default_rows)}
    rows = [r for r in ROWS + DIAGNOSIS_ROWS if r.key in wanted and r.proxy in args.proxies]
    factors = args.sweep_factors if args.sweep_weights else [1.0]
    cfg = lambda name: osp.join(args.config_dir, name)  # noqa: E731

    teacher_tasks = [
        (proxy, dict(config=cfg(PROXIES[proxy].teacher), iters=args.teacher_iters, data=data,
                     cfg_options=teacher_options,
                     work_dir=(osp.join(args.demo_work_dir, 'teacher') if proxy == 'fcos' else
                               osp.join(args.work_dir, f'teacher_{proxy}'))))
        for proxy in args.proxies]
    # The teachers train in parallel too, each in its own process; cached ones are read here.
    teachers = {proxy: run_demo.cached_teacher(**task) for proxy, task in teacher_tasks}
    missing = [(proxy, task) for proxy, task in teacher_tasks if teachers[proxy] is None]
    if missing:
        with ProcessPoolExecutor(min(args.jobs, len(missing)), mp_context=get_context('spawn'),
                                 initializer=_init_worker, initargs=(args.threads,)) as pool:
            futures = {proxy: pool.submit(_quiet, run_demo.train_teacher, task)
                       for proxy, task in missing}
            teachers.update({proxy: future.result() for proxy, future in futures.items()})
    for proxy, teacher in teachers.items():
        print(f'teacher {proxy}: AP {100 * teacher["AP"]:.1f} ({teacher["checkpoint"]})')
    run_options = {}
    if any(r.key in CENTER_ROWS for r in rows):
        centers = class_centers(args, teachers['faster-rcnn'], split, osp.join(
            args.work_dir, 'class_centers', f'faster-rcnn_r18-w32_{split}.pth'))
        run_options = {'model.distill_losses.nd.class_centers': centers}

    tasks = []
    for seed in args.seeds[:1] if args.sweep_weights else args.seeds:
        for row in rows:
            for factor in ([1.0] if row.key == 'student' else factors):
                factor = tuned.get(f'{row.proxy}/{row.key}', factor)
                task_options = dict(options)
                if row.key != 'student':
                    task_options.update(weight_options(cfg(row.config), factor))
                if row.key in CENTER_ROWS:
                    task_options.update(run_options)
                task_options.update(row.options or {})
                suffix = '' if factor == 1.0 else f'_x{factor:g}'
                tasks.append(dict(
                    row=(row.proxy, row.key, factor), config=cfg(row.config),
                    work_dir=osp.join(args.work_dir, split, row.proxy,
                                      f'{row.key}{suffix}_s{seed}'),
                    iters=args.student_iters, seed=seed, name=f'{row.key}{suffix}',
                    cfg_options=task_options,
                    teacher_ckpt=None if row.key == 'student' else
                    teachers[row.proxy]['checkpoint']))
    if args.diagnosis:
        tasks += grad_norm_tasks(tasks, args.seeds[0])
    records = run_all(tasks, args.jobs, args.threads, args.reuse_runs)
    wall_time = time.perf_counter() - start
    results = dict(teachers=teachers, runs=records, wall_time=wall_time, split=split,
                   command=command_line(argv))
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
        table = methods_table(rows, records, teachers, PROXIES, tuned)
    with open(osp.join(out_dir, f'{name}.json'), 'w') as f:
        json.dump(results, f, indent=1)
    with open(osp.join(out_dir, f'{name}.md'), 'w') as f:
        f.write(table)
    if args.markdown:
        os.makedirs(osp.dirname(osp.abspath(args.markdown)), exist_ok=True)
        if tuned:
            text = tuned_section(args, argv, table, records)
        else:
            text = page(args, argv, table, teachers, wall_time, records)
        write_page(args.markdown, text, section=bool(tuned))
    print(table)
    print(f'total wall time {wall_time / 60:.1f} min')
    return results


def command_line(argv: Optional[Sequence[str]]) -> str:
    return 'python tools/bench_methods.py ' + shlex.join(
        sys.argv[1:] if argv is None else list(argv))


TUNED_BEGIN, TUNED_END = '<!-- tuned-weights:begin -->', '<!-- tuned-weights:end -->'


def write_page(path: str, text: str, section: bool) -> None:
    """Write the page at ``path``. The tuned-weights run (``section``) replaces only its section
    of the page; the paper-weights run rewrites the page and keeps that section."""
    old = ''
    if osp.isfile(path):
        with open(path) as f:
            old = f.read()
    kept = old[old.index(TUNED_BEGIN):old.index(TUNED_END) + len(TUNED_END)] \
        if TUNED_BEGIN in old and TUNED_END in old else ''
    if section:
        new = f'{TUNED_BEGIN}\n{text}\n{TUNED_END}'
        text = old.replace(kept, new) if kept else old.rstrip('\n') + '\n\n' + new + '\n'
    elif kept:
        text = text.rstrip('\n') + '\n\n' + kept + '\n'
    with open(path, 'w') as f:
        f.write(text)


def run_minutes(records: Sequence[dict], jobs: int) -> str:
    """What training ``records`` from scratch costs: the sum of their own wall times, and that
    shared among ``jobs`` parallel runs (reused runs count with the time they took)."""
    total = sum(r['wall_time'] for r in records) / 60
    return (f'{len(records)} runs, {total:.0f} run-minutes (about {total / jobs:.0f} min at '
            f'{jobs} in parallel)')


def tuned_section(args: argparse.Namespace, argv: Optional[Sequence[str]], table: str,
                  records: Sequence[dict]) -> str:
    """The page's tuned-weights section: the sweep (its command, its table) and the table of the
    best factors on the val split."""
    with open(args.weights_from) as f:
        sweep = json.load(f)
    sweep_md = osp.join(osp.dirname(args.weights_from), 'sweep.md')
    with open(sweep_md) as f:
        sweep_text = f.read()
    factors = ', '.join(f'{x:g}' for x in sorted({r['row'][2] for r in sweep['runs']
                                                   if r['row'][1] != 'student'}))
    return (f'## Tuned loss weights\n\n'
            f'Tuned on the tune split, never on val: {100 * args.tune_fraction:.0f} % of the '
            f'training images held out (seeded) as its evaluation set, the student trained on '
            f'the rest; each method\'s loss weights scaled by {factors}'
            f' (the same budget for every method), seed 0, '
            f'{run_minutes(sweep["runs"], args.jobs)}:\n\n'
            f'    {sweep.get("command", "python tools/bench_methods.py --sweep-weights")}\n\n'
            f'{sweep_text}\n'
            f'Each method at its best factor (a factor of 1 reuses the paper-weights run), on '
            f'the val split, seeds {args.seeds}, {run_minutes(records, args.jobs)}:\n\n'
            f'    {command_line(argv)}\n\n{table}')


def page(args: argparse.Namespace, argv: Optional[Sequence[str]], table: str, teachers: dict,
         wall_time: float, records: Sequence[dict]) -> str:
    """The markdown page: setting, command, table."""
    command = command_line(argv)
    load = ', '.join(f'{x:.1f}' for x in os.getloadavg())
    teacher_text = '; '.join(f'{PROXIES[p].label}: teacher {100 * t["AP"]:.1f} AP '
                             f'({args.teacher_iters} iterations, seed 0)'
                             for p, t in teachers.items())
    return (f'# Which method works: distillation methods on the CPU demo proxies\n\n'
            f'Written by `tools/bench_methods.py` (`make bench-methods`):\n\n'
            f'    {command}\n\n'
            f'Data: the demo\'s synthetic shapes set ({args.num_train} train / {args.num_val} val '
            f'images, sides {args.image_size[0]}-{args.image_size[1]} px, 1-{args.max_objects} '
            f'shapes of {args.object_size[0]:g}-{args.object_size[1]:g} of the shorter side). '
            f'{teacher_text}. Every student run: {args.student_iters} iterations (AdamW, warm-up '
            f'+ cosine), the same seed and data order for every row of a seed; seeds '
            f'{args.seeds}. AP: COCO box AP (mmdet `CocoMetric`) on the val split, x100, mean ± '
            f'sample std over seeds; gain: AP minus the same-seed student alone; gap closed: '
            f'mean gain / (teacher AP - mean student AP); time: training iterations (data '
            f'loading included, validation excluded), the fastest run of the row relative to '
            f'the fastest student alone of the same proxy (the least contended runs; wall time '
            f'still depends on what else the machine ran: `make bench` measures the cost of a '
            f'distillation step under control). '
            f'{args.jobs} runs in parallel, {args.threads} torch thread(s) each, '
            f'{os.cpu_count()} CPU(s) seen, load average at the end {load}. This invocation: '
            f'{wall_time / 60:.1f} min (reused runs and cached teachers not re-trained); the '
            f'table from scratch, teachers aside: {run_minutes(records, args.jobs)}.\n\n'
            f'What the ranks mean, VkD\'s diagnosis and the methods that do not beat the student '
            f'alone (RTK, ND, KD++: what was checked): [vkd_diagnosis.md](vkd_diagnosis.md).\n\n'
            f'{table}')


if __name__ == '__main__':
    main()
