"""CPU demo of VkD on the synthetic shapes set: data -> teacher -> student alone and distilled.

    python tools/run_demo.py [--work-dir work_dirs/demo] [--seeds 0 1 2] [--markdown FILE]

1. writes the seeded synthetic COCO set (``vkd_mmdet.testing.make_synthetic_coco``; reused when
   it exists with the same arguments);
2. trains the teacher (``configs/demo/teacher_*.py``) and saves its weights as a plain state
   dict, ``<work-dir>/teacher/teacher.pth`` (reused by later runs with the same settings);
3. for every seed, trains the student alone and each distillation config (same iterations, same
   seed, same data order);
4. evaluates every model with mmdet's ``CocoMetric`` on the val split (the final validation of
   its training run), prints a table (AP, AP50, training time) and each distilled run's start-up
   report summary (``StartupReportHook``), writes ``results.json``,
   ``results.md`` and ``demo.png`` (AP bars, loss curves) into the work dir, and with
   ``--markdown`` the table (mean ± std over seeds) into that file too.

Training runs in this process with mmengine's ``Runner``, one run after the other.
"""
import argparse
import copy
import json
import os
import os.path as osp
import sys
import time
from typing import List, Optional, Sequence

import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.runner import Runner

from vkd_mmdet.testing import make_synthetic_coco
from vkd_mmdet.utils import enable_startup_report

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), 'analysis'))
from demo_report import markdown_table, per_seed_table, plot, read_scalars, report, summarise

CONFIG_DIR = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'configs', 'demo')
TEACHER_CFG = osp.join(CONFIG_DIR, 'teacher_fcos_r18-w32.py')
STUDENT_CFG = osp.join(CONFIG_DIR, 'student_fcos_r18-w16.py')
DISTILL_CFGS = [osp.join(CONFIG_DIR, 'vkd_fcos_r18-w32_r18-w16.py')]


def add_data_args(parser: argparse.ArgumentParser) -> None:
    """The synthetic set's arguments (``make_synthetic_coco``), shared with bench_methods.py."""
    parser.add_argument('--num-train', type=int, default=800, help='training images')
    parser.add_argument('--num-val', type=int, default=200, help='validation images')
    parser.add_argument('--image-size', type=int, nargs=2, default=(96, 128),
                        metavar=('MIN', 'MAX'), help='generated image side range')
    parser.add_argument('--max-objects', type=int, default=4, help='objects per image, at most')
    parser.add_argument('--object-size', type=float, nargs=2, default=(0.25, 0.6),
                        metavar=('MIN', 'MAX'),
                        help='object extent range, fraction of the shorter image side')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Synthetic-data CPU demo of VkD distillation')
    parser.add_argument('--work-dir', default='work_dirs/demo', help='runs, plot and tables')
    parser.add_argument('--data-root', default='data/synthetic_coco', help='synthetic data set')
    add_data_args(parser)
    parser.add_argument('--teacher-config', default=TEACHER_CFG)
    parser.add_argument('--student-config', default=STUDENT_CFG)
    parser.add_argument('--distill-configs', nargs='+', default=DISTILL_CFGS,
                        help='distillation configs, each compared with the student alone')
    parser.add_argument('--teacher-iters', type=int, default=600, help='teacher iterations')
    parser.add_argument('--student-iters', type=int, default=500,
                        help='iterations of every student run')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0],
                        help='student seeds (the teacher always uses seed 0)')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch intra-op threads (1 is fastest on a shared 2-core machine)')
    parser.add_argument('--reuse-runs', action='store_true',
                        help='reuse a finished student run of the same config, seed and '
                        'iterations (e.g. make demo\'s seed 0 in make bench-accuracy); start '
                        'from a clean work dir after changing code or data')
    parser.add_argument('--markdown', help='also write the results table to this file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='overrides applied to every config (teacher, students)')
    return parser.parse_args(argv)


def set_iterations(cfg: Config, iters: int) -> None:
    """Rescale the demo configs' iteration schedule (warm-up + cosine) to ``iters``."""
    warmup = max(1, min(cfg.get('warmup_iters', 100), iters // 5))
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = iters
    cfg.default_hooks.checkpoint.interval = iters
    warm, cosine = cfg.param_scheduler
    warm.end = warmup
    cosine.update(begin=warmup, end=max(iters, warmup + 1), T_max=max(iters - warmup, 1))


def finished_run(work_dir: str, key: dict) -> Optional[dict]:
    """The record of a finished run in ``work_dir`` made with ``key`` (config, seed, iterations,
    options), or None."""
    record_file = osp.join(work_dir, 'record.json')
    if not osp.isfile(record_file):
        return None
    with open(record_file) as f:
        record = json.load(f)
    return record if {k: record.get(k) for k in key} == key else None


def run_key(config: str, seed: int, iters: int, cfg_options: Optional[dict] = None) -> dict:
    """What makes two runs the same run (for ``--reuse-runs``)."""
    return dict(config=osp.relpath(config), seed=seed, iters=iters, options=cfg_options or {})


def train(config: str, work_dir: str, iters: int, seed: int, name: str,
          cfg_options: Optional[dict] = None, teacher_ckpt: Optional[str] = None,
          reuse: bool = False) -> dict:
    """Train one config, return its record: metrics, times and its mmengine ``scalars.json``.

    With ``reuse``, a finished run in ``work_dir`` of the same config, seed, iterations and
    options is returned instead of training again.
    """
    key = run_key(config, seed, iters, cfg_options)
    if reuse and (record := finished_run(work_dir, key)) is not None:
        print(f'{name} seed {seed}: reusing {work_dir}')
        return record
    start = time.perf_counter()
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    set_iterations(cfg, iters)
    # One logged window per logging interval: the mean logged iteration time is then the mean
    # over all iterations, and scalars.json holds every loss curve (window means).
    cfg.default_hooks.logger.interval = min(cfg.default_hooks.logger.interval, iters)
    cfg.log_processor.window_size = cfg.default_hooks.logger.interval
    cfg.work_dir = work_dir
    cfg.randomness = dict(seed=seed)
    # Runs share a process (here, or a worker of tools/bench_methods.py): mmengine keeps one
    # visualizer and one logger per name, so each run gets its own names.
    cfg.experiment_name = f'{name}@{osp.abspath(work_dir)}@{time.time_ns()}'
    cfg.visualizer.name = cfg.experiment_name
    if teacher_ckpt is not None:
        cfg.model.teacher_ckpt = teacher_ckpt
    enable_startup_report(cfg)
    runner = Runner.from_cfg(cfg)
    runner.train()
    scalars = osp.join(runner.log_dir, 'vis_data', 'scalars.json')
    train_log, metrics = read_scalars(scalars)
    record = dict(key, name=name, scalars=osp.relpath(scalars),
                  AP=metrics.get('coco/bbox_mAP', float('nan')),
                  AP50=metrics.get('coco/bbox_mAP_50', float('nan')),
                  train_time=float(np.mean([e['time'] for e in train_log])) * iters,
                  wall_time=time.perf_counter() - start)
    report = osp.join(work_dir, 'startup_report.json')
    if osp.isfile(report):
        with open(report) as f:
            record['startup_summary'] = json.load(f)['summary']
    with open(osp.join(work_dir, 'record.json'), 'w') as f:
        json.dump(record, f)
    return record


def startup_lines(records: Sequence[dict]) -> List[str]:
    """``<name> seed <s>: <start-up report summary>`` for every distilled run."""
    return [f'{record["name"]} seed {record["seed"]}: {record["startup_summary"]}'
            for record in records if 'startup_summary' in record]


def teacher_settings(config: str, iters: int, data: dict,
                     cfg_options: Optional[dict] = None) -> dict:
    """What a cached teacher must have been trained with to be reused."""
    return dict(config=osp.relpath(config), iters=iters, data=data,
                cfg_options=cfg_options or {})


def cached_teacher(config: str, work_dir: str, iters: int, data: dict,
                   cfg_options: Optional[dict] = None) -> Optional[dict]:
    """The record of the teacher in ``work_dir`` if it was trained with these settings."""
    record_file = osp.join(work_dir, 'record.json')
    if not (osp.isfile(osp.join(work_dir, 'teacher.pth')) and osp.isfile(record_file)):
        return None
    with open(record_file) as f:
        record = json.load(f)
    return record if record.get('settings') == teacher_settings(
        config, iters, data, cfg_options) else None


def train_teacher(config: str, work_dir: str, iters: int, data: dict,
                  cfg_options: Optional[dict] = None) -> dict:
    """Train a teacher once (seed 0) and save it as ``<work_dir>/teacher.pth``; reuse it while
    the settings that made it (config, iterations, ``data``: the generator's arguments, options)
    are unchanged."""
    record = cached_teacher(config, work_dir, iters, data, cfg_options)
    if record is not None:
        print(f'teacher: reusing {record["checkpoint"]}')
        return record
    ckpt = osp.join(work_dir, 'teacher.pth')
    record_file = osp.join(work_dir, 'record.json')
    settings = teacher_settings(config, iters, data, cfg_options)
    record = train(config, work_dir, iters, 0, 'teacher', cfg_options)
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        state = torch.load(f.read().strip(), map_location='cpu', weights_only=False)
    # A plain state dict: the distillers load it with torch's safe loader.
    torch.save({'state_dict': state['state_dict'], 'meta': {}}, ckpt)
    record.update(settings=settings, checkpoint=ckpt)
    with open(record_file, 'w') as f:
        json.dump(record, f)
    return record


def _data_kwargs(args: argparse.Namespace) -> dict:
    return dict(num_train=args.num_train, num_val=args.num_val,
                image_size=list(args.image_size), max_objects=args.max_objects,
                object_size=list(args.object_size))


def main(argv: Optional[Sequence[str]] = None) -> List[dict]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    os.makedirs(args.work_dir, exist_ok=True)
    make_synthetic_coco(args.data_root, **_data_kwargs(args), progress=True)
    data_root = args.data_root.rstrip('/') + '/'
    args.cfg_options = _with_data_root(args.cfg_options, data_root)
    teacher = train_teacher(args.teacher_config, osp.join(args.work_dir, 'teacher'),
                            args.teacher_iters, _data_kwargs(args), args.cfg_options)
    records = [teacher]
    for seed in args.seeds:
        records.append(train(args.student_config, osp.join(args.work_dir, f'student_s{seed}'),
                             args.student_iters, seed, 'student', args.cfg_options,
                             reuse=args.reuse_runs))
        for config in args.distill_configs:
            name = 'student+' + osp.basename(config).split('_')[0]
            records.append(train(config, osp.join(args.work_dir, f'{name}_s{seed}'),
                                 args.student_iters, seed, name, args.cfg_options,
                                 teacher_ckpt=teacher['checkpoint'], reuse=args.reuse_runs))
    rows = summarise(records)
    table = markdown_table(rows)
    with open(osp.join(args.work_dir, 'results.json'), 'w') as f:
        json.dump(dict(rows=rows, runs=records), f, indent=1)
    with open(osp.join(args.work_dir, 'results.md'), 'w') as f:
        f.write(table)
    plot(rows, records, osp.join(args.work_dir, 'demo.png'))
    if args.markdown:
        os.makedirs(osp.dirname(osp.abspath(args.markdown)), exist_ok=True)
        with open(args.markdown, 'w') as f:
            f.write(report(rows, records, args, time.perf_counter() - start))
    print(table)
    print(per_seed_table(records))
    print('\n'.join(startup_lines(records)))
    print(f'plot: {osp.join(args.work_dir, "demo.png")}; total wall time '
          f'{time.perf_counter() - start:.0f} s')
    return rows


# Annotation file and image folder of the training and the evaluation set of each data split:
# 'val' is the reported one; 'tune' holds out part of the training images (tools/bench_methods.py)
# and is never reported.
SPLITS = {
    'val': (('annotations/instances_train.json', 'train/'),
            ('annotations/instances_val.json', 'val/')),
    'tune': (('annotations/instances_tune-train.json', 'train/'),
             ('annotations/instances_tune-val.json', 'train/')),
}


def _with_data_root(cfg_options: Optional[dict], data_root: str, split: str = 'val') -> dict:
    """Point every dataloader and the evaluator at ``data_root`` and the files of ``split``."""
    options = copy.deepcopy(cfg_options or {})
    (train_ann, train_img), (val_ann, val_img) = SPLITS[split]
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        options[f'{loader}.dataset.data_root'] = data_root
    if split != 'val':
        options['train_dataloader.dataset.ann_file'] = train_ann
        options['train_dataloader.dataset.data_prefix.img'] = train_img
        for loader in ('val_dataloader', 'test_dataloader'):
            options[f'{loader}.dataset.ann_file'] = val_ann
            options[f'{loader}.dataset.data_prefix.img'] = val_img
    for evaluator in ('val_evaluator', 'test_evaluator'):
        options[f'{evaluator}.ann_file'] = data_root + val_ann
    return options


if __name__ == '__main__':
    main()
