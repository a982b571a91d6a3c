"""What distillation costs: a distillation train step against the student step + teacher forward.

Times, interleaved on one random batch, (a) the student's train step, (b) the plain fp32
``no_grad`` teacher forward, (b') the distiller's fast teacher forward, (c) the distillation
train step and (d) the distillation losses alone (see :mod:`vkd_mmdet.testing.benchmark`), each
ratio with a confidence interval paired by round, for a fixed number of rounds or until every
interval is as narrow as ``--target-ci`` (within ``--time-limit``); then times the phases of (c)
(``--breakdown-iters`` steps). Prints the markdown row and the breakdown of ``docs/benchmark.md``
and writes every figure as JSON; ``--tables`` prints both tables from saved JSON files.

Usage::

    python tools/benchmark.py configs/vkd/faster_rcnn_r101_r18.py --batch 2 --size 512 512 \\
        --device cpu --teacher-precision bf16 --target-ci 0.03 --time-limit 3600 \\
        --out work_dirs/benchmark/frcnn_bf16.json
    python tools/benchmark.py --tables work_dirs/benchmark/frcnn_*.json
"""
import argparse
import json
import os
import os.path as osp
from typing import List, Optional

import torch
from mmengine.config import DictAction

from vkd_mmdet.models.distillers.frozen_teacher import TEACHER_PRECISIONS
from vkd_mmdet.testing.benchmark import MARKDOWN_HEADER, benchmark_distiller, markdown_row
from vkd_mmdet.testing.step_breakdown import breakdown_table


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Time a distillation step against its parts')
    parser.add_argument('config', nargs='?',
                        help='distillation config (a DetectionDistiller model)')
    parser.add_argument('--iters', type=int, default=10,
                        help='timed rounds; with --target-ci, the fewest (at least 2)')
    parser.add_argument('--target-ci', type=float, default=None, metavar='HALF_WIDTH',
                        help='take rounds until every ratio\'s confidence interval has at most '
                        'this half-width (e.g. 0.03), within --time-limit')
    parser.add_argument('--time-limit', type=float, default=3600.0, metavar='SECONDS',
                        help='with --target-ci: wall-clock budget of the rounds (warm-up '
                        'included); the JSON and the row say when it stopped the rounds')
    parser.add_argument('--max-iters', type=int, default=200,
                        help='with --target-ci: the most timed rounds')
    parser.add_argument('--confidence', type=float, default=0.95,
                        help='confidence level of the intervals')
    parser.add_argument('--breakdown-iters', type=int, default=3,
                        help='distillation steps timed phase by phase after the rounds (0: none)')
    parser.add_argument('--warmup', type=int, default=2, help='untimed rounds first')
    parser.add_argument('--batch', type=int, default=2, help='images per batch')
    parser.add_argument('--size', type=int, nargs=2, default=[512, 512], metavar=('H', 'W'),
                        help='image height and width')
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--teacher-precision', choices=list(TEACHER_PRECISIONS), default=None,
                        help='the distiller\'s teacher_precision (default: the config\'s)')
    parser.add_argument('--threads', type=int, default=None, help='torch.set_num_threads (CPU)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, as in mmdet tools (key=value)')
    parser.add_argument('--out', default=None, help='write the results as JSON here')
    parser.add_argument('--tables', nargs='+', metavar='JSON',
                        help='measure nothing: print the rows and the breakdown of these results')
    args = parser.parse_args(argv)
    if (args.config is None) == (args.tables is None):
        parser.error('give a config to measure, or --tables JSON... to print saved results')
    return args


def print_tables(results: List[dict]) -> None:
    """The rows of ``docs/benchmark.md`` and, for results that have one, the breakdown."""
    print(MARKDOWN_HEADER)
    for result in results:
        print(markdown_row(result))
    with_breakdown = [result for result in results if result.get('breakdown')]
    if with_breakdown:
        print()
        print(breakdown_table(with_breakdown))


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    if args.tables:
        results = []
        for path in args.tables:
            with open(path) as f:
                results.append(json.load(f))
        print_tables(results)
        return dict(tables=results)
    if args.threads:
        torch.set_num_threads(args.threads)
    result = benchmark_distiller(
        args.config, iters=args.iters, warmup=args.warmup, batch=args.batch,
        size=tuple(args.size), device=args.device, teacher_precision=args.teacher_precision,
        seed=args.seed, cfg_options=args.cfg_options, target_ci=args.target_ci,
        time_limit_s=args.time_limit, max_iters=args.max_iters, confidence=args.confidence,
        breakdown_iters=args.breakdown_iters)
    result['markdown_row'] = markdown_row(result)
    print_tables([result])
    if result['stop_reason'] not in ('iters', 'target'):
        print(f"--target-ci {args.target_ci} not reached: stopped by {result['stop_reason']} "
              f"after {result['rounds']} rounds; widest interval ± "
              f"{max(r['half_width'] for r in result['ratios'].values()):.3f}")
    print(f"projector weight maps per step: {result['projector_maps_per_step']} "
          f"({result['num_projectors']} projectors); fast teacher feature error "
          f"{result['teacher_rel_error']:.1e} (relative, vs plain fp32)")
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == '__main__':
    main()
