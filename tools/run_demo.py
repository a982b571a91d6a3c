"""CPU demo of VkD on the synthetic shapes set: data -> teacher -> student alone and distilled.

    python tools/run_demo.py [--work-dir work_dirs/demo] [--seeds 0 1 2] [--markdown FILE]

1. writes the seeded synthetic COCO set (``vkd_mmdet.datasets.make_synthetic_coco``; reused when
   it exists with the same arguments);
2. trains the teacher (``configs/demo/teacher_*.py``) and saves its weights as a plain state
   dict, ``<work-dir>/teacher/teacher.pth`` (reused by later runs with the same settings);
3. for every seed, trains the student alone and each distillation config (same iterations, same
   seed, same data order);
4. evaluates every model with mmdet's ``CocoMetric`` on the val split (the final validation of
   its training run), prints a table (AP, AP50, training time), writes ``results.json``,
   ``results.md`` and ``demo.png`` (AP bars, loss curves) into the work dir, and with
   ``--markdown`` the table (mean ± std over seeds) into that file too.

Training runs in this process with mmengine's ``Runner``, one run after the other.
"""
import argparse
import copy
import json
import os
import os.path as osp
import time
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.hooks import Hook
from mmengine.runner import Runner

from vkd_mmdet.datasets import make_synthetic_coco

CONFIG_DIR = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'configs', 'demo')
TEACHER_CFG = osp.join(CONFIG_DIR, 'teacher_fcos_r18-w32.py')
STUDENT_CFG = osp.join(CONFIG_DIR, 'student_fcos_r18-w16.py')
DISTILL_CFGS = [osp.join(CONFIG_DIR, 'vkd_fcos_r18-w32_r18-w16.py')]


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Synthetic-data CPU demo of VkD distillation')
    parser.add_argument('--work-dir', default='work_dirs/demo', help='runs, plot and tables')
    parser.add_argument('--data-root', default='data/synthetic_coco', help='synthetic data set')
    parser.add_argument('--num-train', type=int, default=800, help='training images')
    parser.add_argument('--num-val', type=int, default=200, help='validation images')
    parser.add_argument('--image-size', type=int, nargs=2, default=(96, 128),
                        metavar=('MIN', 'MAX'), help='generated image side range')
    parser.add_argument('--max-objects', type=int, default=4, help='objects per image, at most')
    parser.add_argument('--object-size', type=float, nargs=2, default=(0.25, 0.6),
                        metavar=('MIN', 'MAX'),
                        help='object extent range, fraction of the shorter image side')
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


class RecordHook(Hook):
    """Keeps the per-iteration losses, the training time (validation excluded) and the metrics
    of the last validation of a run."""

    priority = 'VERY_LOW'

    def __init__(self) -> None:
        self.losses: Dict[str, List[float]] = {}
        self.metrics: dict = {}
        self.train_time = 0.0
        self._start = 0.0

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        self._start = time.perf_counter()

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.train_time += time.perf_counter() - self._start
        for key, value in (outputs or {}).items():
            if key.startswith('loss'):
                self.losses.setdefault(key, []).append(float(value))

    def after_val_epoch(self, runner, metrics=None) -> None:
        self.metrics = dict(metrics or {})


def set_iterations(cfg: Config, iters: int) -> None:
    """Rescale the demo configs' iteration schedule (warm-up + cosine) to ``iters``."""
    warmup = max(1, min(cfg.get('warmup_iters', 100), iters // 5))
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = iters
    cfg.default_hooks.checkpoint.interval = iters
    warm, cosine = cfg.param_scheduler
    warm.end = warmup
    cosine.update(begin=warmup, end=max(iters, warmup + 1), T_max=max(iters - warmup, 1))


def train(config: str, work_dir: str, iters: int, seed: int, name: str,
          cfg_options: Optional[dict] = None, teacher_ckpt: Optional[str] = None,
          reuse: bool = False) -> dict:
    """Train one config, return its record: metrics, training time, loss curves.

    With ``reuse``, a finished run in ``work_dir`` of the same config, seed and iterations is
    returned instead of training again.
    """
    record_file = osp.join(work_dir, 'record.json')
    if reuse and osp.isfile(record_file):
        with open(record_file) as f:
            result = json.load(f)
        if (result['config'], result['seed'], result['iters']) == (osp.relpath(config), seed,
                                                                   iters):
            print(f'{name} seed {seed}: reusing {record_file}')
            return result
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    set_iterations(cfg, iters)
    cfg.work_dir = work_dir
    cfg.randomness = dict(seed=seed)
    # Runs share this process: their visualizers and loggers must not share instances.
    cfg.experiment_name = name
    cfg.visualizer.name = f'{name}_visualizer'
    if teacher_ckpt is not None:
        cfg.model.teacher_ckpt = teacher_ckpt
    runner = Runner.from_cfg(cfg)
    record = RecordHook()
    runner.register_hook(record)
    runner.train()
    result = dict(name=name, config=osp.relpath(config), seed=seed, iters=iters,
                  AP=record.metrics.get('coco/bbox_mAP', float('nan')),
                  AP50=record.metrics.get('coco/bbox_mAP_50', float('nan')),
                  train_time=record.train_time, losses=record.losses)
    with open(record_file, 'w') as f:
        json.dump(result, f)
    return result


def train_teacher(args: argparse.Namespace) -> dict:
    """Train the teacher once; reuse it while the settings that made it are unchanged."""
    work_dir = osp.join(args.work_dir, 'teacher')
    ckpt = osp.join(work_dir, 'teacher.pth')
    record_file = osp.join(work_dir, 'record.json')
    settings = dict(config=osp.relpath(args.teacher_config), iters=args.teacher_iters,
                    data=_data_kwargs(args), cfg_options=args.cfg_options or {})
    if osp.isfile(ckpt) and osp.isfile(record_file):
        with open(record_file) as f:
            record = json.load(f)
        if record.get('settings') == settings:
            print(f'teacher: reusing {ckpt}')
            return record
    record = train(args.teacher_config, work_dir, args.teacher_iters, 0, 'teacher',
                   args.cfg_options)
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        state = torch.load(f.read().strip(), map_location='cpu', weights_only=False)
    # A plain state dict: the distillers load it with torch's safe loader.
    torch.save({'state_dict': state['state_dict'], 'meta': {}}, ckpt)
    record.update(settings=settings, checkpoint=ckpt)
    with open(record_file, 'w') as f:
        json.dump(record, f)
    return record


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
            f'Train time: training iterations only (validation excluded), wall clock, '
            f'{args.threads} torch thread(s), {os.cpu_count()} CPU(s) seen; the whole run took '
            f'{wall_time / 60:.1f} min (teacher reused if it was cached).\n\n'
            f'{markdown_table(rows)}\n{per_seed_table(records)}')


def plot(rows: List[dict], records: List[dict], path: str) -> None:
    """AP / AP50 bars (error bars: std over seeds) and the loss curves of the first seed."""
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
        first_seed.setdefault(record['name'], record)
    for name, record in first_seed.items():
        if name == 'teacher':
            continue
        detection = _detection_loss(record['losses'])
        line, = ax_loss.plot(_smooth(detection), label=f'{name}: detection loss')
        for key, values in record['losses'].items():
            if key != 'loss' and key not in _detection_keys(record['losses']):
                ax_loss.plot(_smooth(np.array(values)), linestyle=':', color=line.get_color(),
                             label=f'{name}: {key}')
    ax_loss.set_xlabel('iteration')
    ax_loss.set_yscale('log')
    ax_loss.legend(fontsize=7)
    ax_loss.set_title('training losses (first seed)')
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _detection_keys(losses: Dict[str, List[float]]) -> List[str]:
    # The detector's own terms; distillation terms are named loss_<method>_p<k>.
    return [k for k in losses if k in ('loss_cls', 'loss_bbox', 'loss_centerness')]


def _detection_loss(losses: Dict[str, List[float]]) -> np.ndarray:
    return np.sum([losses[k] for k in _detection_keys(losses)], axis=0)


def _smooth(values: np.ndarray, window: int = 20) -> np.ndarray:
    window = max(1, min(window, len(values)))
    return np.convolve(values, np.ones(window) / window, mode='valid')


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
    teacher = train_teacher(args)
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
        json.dump(dict(rows=rows, runs=[{k: v for k, v in r.items() if k != 'losses'}
                                        for r in records]), f, indent=1)
    with open(osp.join(args.work_dir, 'results.md'), 'w') as f:
        f.write(table)
    plot(rows, records, osp.join(args.work_dir, 'demo.png'))
    if args.markdown:
        os.makedirs(osp.dirname(osp.abspath(args.markdown)), exist_ok=True)
        with open(args.markdown, 'w') as f:
            f.write(report(rows, records, args, time.perf_counter() - start))
    print(table)
    print(per_seed_table(records))
    print(f'plot: {osp.join(args.work_dir, "demo.png")}; total wall time '
          f'{time.perf_counter() - start:.0f} s')
    return rows


def _with_data_root(cfg_options: Optional[dict], data_root: str) -> dict:
    """Point every dataloader and the evaluator at ``data_root``."""
    options = copy.deepcopy(cfg_options or {})
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        options[f'{loader}.dataset.data_root'] = data_root
    for evaluator in ('val_evaluator', 'test_evaluator'):
        options[f'{evaluator}.ann_file'] = data_root + 'annotations/instances_val.json'
    return options


if __name__ == '__main__':
    main()
