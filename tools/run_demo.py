"""CPU demo of VkD on the synthetic shapes set: data -> teacher -> student alone and distilled.

    python tools/run_demo.py [--work-dir work_dirs/demo] [--seeds 0 1 2] [--markdown FILE]

1. writes the seeded synthetic COCO set (``vkd_mmdet.testing.make_synthetic_coco``; reused when
   it exists with the same arguments);
2. trains the teacher (``configs/demo/teacher_*.py``) and saves its weights as a plain state
   dict, ``<work-dir>/teacher/teacher.pth`` (reused by later runs with the same settings);
3. for every seed, trains the student alone and each distillation config (same iterations, same
   seed, same data order);
4. evaluates every model with mmdet's ``CocoMetric`` on the val split (the final validation of
   its training run), prints a table (AP, AP50, training time), writes ``results.json``,
   ``results.md`` and ``demo.png`` (AP bars, loss curves) into the work dir, and with
   ``--markdown`` the table (mean ± std over seeds) into that file too.

Training runs in this process with mmengine's ``Runner``, one run after the other
(``vkd_mmdet.benchmarks.run_demo``).
"""
import argparse
from typing import List, Optional, Sequence

from mmengine.config import DictAction

from vkd_mmdet.benchmarks import PROXIES, add_data_args, demo_configs, run_demo

CONFIGS = demo_configs()


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Synthetic-data CPU demo of VkD distillation')
    parser.add_argument('--work-dir', default='work_dirs/demo', help='runs, plot and tables')
    parser.add_argument('--data-root', default='data/synthetic_coco', help='synthetic data set')
    add_data_args(parser)
    parser.add_argument('--teacher-config', default=CONFIGS['teacher'])
    parser.add_argument('--student-config', default=CONFIGS['student'])
    parser.add_argument('--distill-configs', nargs='+', default=CONFIGS['distill'],
                        help='distillation configs, each compared with the student alone')
    # the leaderboard's FCOS teacher is this one (the same cache): one default for both
    parser.add_argument('--teacher-iters', type=int, default=PROXIES['fcos'].teacher_iters,
                        help='teacher iterations')
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


def main(argv: Optional[Sequence[str]] = None) -> List[dict]:
    return run_demo(parse_args(argv))


if __name__ == '__main__':
    main()
