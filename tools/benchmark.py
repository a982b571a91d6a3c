"""What distillation costs: a distillation train step against the student step + teacher forward.

Times, interleaved on one random batch, (a) the student's train step, (b) the plain fp32
``no_grad`` teacher forward, (b') the distiller's fast teacher forward, (c) the distillation
train step and (d) the distillation losses alone (see :mod:`vkd_mmdet.testing.benchmark`); prints
a markdown row of ``docs/benchmark.md`` and writes every figure as JSON.

Usage::

    python tools/benchmark.py configs/vkd/faster_rcnn_r101_r18.py --iters 10 --batch 2 \\
        --size 512 512 --device cpu --teacher-precision bf16 --out work_dirs/benchmark.json
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


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Time a distillation step against its parts')
    parser.add_argument('config', help='distillation config (a DetectionDistiller model)')
    parser.add_argument('--iters', type=int, default=10, help='timed rounds (>= 5 for a spread)')
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
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    result = benchmark_distiller(
        args.config, iters=args.iters, warmup=args.warmup, batch=args.batch,
        size=tuple(args.size), device=args.device, teacher_precision=args.teacher_precision,
        seed=args.seed, cfg_options=args.cfg_options)
    result['markdown_row'] = markdown_row(result)
    print(MARKDOWN_HEADER)
    print(result['markdown_row'])
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
