"""Leaderboard of the distillation methods on the CPU demo proxies (``make bench-methods``).

    python tools/bench_methods.py [--seeds 0 1 2] [--jobs 2] [--reuse-runs] [--markdown FILE]
    python tools/bench_methods.py --sweep-weights [--sweep-factors 0.25 0.5 1 2.5]
    python tools/bench_methods.py --weights-from work_dirs/bench_methods/tune/sweep.json
    python tools/bench_methods.py --diagnosis [--seeds 0 1 2]

On ``tools/run_demo.py``'s synthetic shapes set, with its pieces (data generator, teacher cache,
one training run with mmengine's ``Runner``, COCO evaluation; all in ``vkd_mmdet.benchmarks``,
the rows in ``vkd_mmdet/benchmarks/rows.py``):

1. three proxies: the demo's FCOS pair (one-stage; the teacher is ``make demo``'s, cached in
   ``--demo-work-dir``), a CPU-sized Faster R-CNN pair (two-stage) and a GFL pair (one-stage,
   for the head methods LD and CrossKD); the last two teachers are trained once into
   ``<work-dir>/teacher_<proxy>``; the ND and KD++ rows get their teacher's class centres from
   ``tools/compute_class_centers.py``, run as a user would. ``--proxies`` runs some of them: a
   run that covers the page's own (``PAGE_PROXIES``: FCOS and Faster R-CNN) writes the page, a
   run of others only (``make bench-methods-gfl``) a section of it;
2. every row of ``ROWS`` (the student alone, each method, VkD's ablations) for every seed, the
   same iterations, seed and data order for all rows, ``--jobs`` runs at a time (one process
   each, ``--threads`` torch threads), each printed with an ETA when it finishes;
   ``--row-seeds ROW=SEEDS`` runs some rows on more seeds than the rest: the student alone (it
   is in every comparison and, where its seed-to-seed spread dominates the paired gains, more
   seeds of it alone narrow every interval over it at once), and rows whose differences spread
   more than the others';
3. the table (AP, AP50, the gain over the student alone with its 95 % interval, the paired
   t-interval over the same seeds, or Welch's over all of each side's seeds where the student
   alone ran seeds the row did not; the rank from direct comparisons with every other row, ties
   shown; share of the teacher-student gap closed; training time relative to the student alone;
   the paired difference to VkD with its interval) and the seeds each row's spread implies for
   intervals of +-0.6 AP (and, for the rows with Welch's interval, the seeds of the student alone
   it needs), into ``<work-dir>/val/methods.md``, every run's numbers into
   ``methods_per_seed.csv`` beside it, and, with ``--markdown``, a page with the setting, the
   command and the total run time, its per-seed CSV beside it (``<page>_per_seed.csv``).

AP is measured on 1000 validation images (``--num-val``; the demo's 200 are the first of them):
on 200, the seed-to-seed spread of a row's paired gains was 1.3-1.7 times its spread on 2000
other images (docs/vkd_diagnosis.md, section 7). Runs are identified by their training
annotations, not by the generator's arguments: with ``--reuse-runs`` a finished run measured on
another validation set is evaluated again from its checkpoint, not trained again.

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
import shlex
import sys
from typing import List, Optional, Sequence, Tuple

from mmengine.config import DictAction

from vkd_mmdet.benchmarks import (
    PAGE_PROXIES,
    PROXIES,
    SWEEP_ROWS,
    add_data_args,
    demo_config_dir,
    format_seed_ranges,
    parse_row_seeds,
    run_leaderboard,
)
from vkd_mmdet.benchmarks.leaderboard import selected_rows


def _row_seeds(text: str) -> Tuple[str, List[int]]:
    try:
        return parse_row_seeds(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/bench_methods')
    parser.add_argument('--demo-work-dir', default='work_dirs/demo',
                        help="make demo's work dir: its FCOS teacher is reused")
    parser.add_argument('--data-root', default='data/synthetic_coco')
    parser.add_argument('--config-dir', default=demo_config_dir(),
                        help='folder of the demo configs (the file names of '
                        'vkd_mmdet/benchmarks/rows.py)')
    parser.add_argument('--proxies', nargs='+', choices=list(PROXIES), default=list(PAGE_PROXIES),
                        help='default: the page\'s own (a run of others only writes a section '
                        'of the page)')
    parser.add_argument('--rows', nargs='+', help='row keys to run (default: all; with '
                        f'--sweep-weights: {" ".join(SWEEP_ROWS)}; with --weights-from: the rows '
                        'it tuned); the student alone always runs')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--row-seeds', type=_row_seeds, nargs='+', action='extend',
                        metavar='ROW=SEEDS',
                        help='more seeds for some rows (beside --seeds), e.g. student=8-31 '
                        'ld=8-31 fgd=8,9; a row\'s seeds must be among the student alone\'s '
                        '(every gain is over it): a gain gets the paired interval where the row '
                        'ran every seed of the student alone, Welch\'s over all of each side\'s '
                        'seeds where the student alone ran more; two methods pair on their common '
                        'seeds')
    parser.add_argument('--teacher-iters', type=int,
                        help="every proxy's teacher (default: each proxy's own, rows.PROXIES)")
    parser.add_argument('--student-iters', type=int, default=500)
    parser.add_argument('--jobs', type=int, default=2, help='runs in parallel (processes)')
    parser.add_argument('--threads', type=int, default=1, help='torch threads per run')
    parser.add_argument('--reuse-runs', action='store_true',
                        help='reuse finished runs of the same config, seed, iterations, options')
    parser.add_argument('--markdown', help='write the page (setting, commands, table) here')
    parser.add_argument('--config-readmes', metavar='CONFIGS',
                        help='with --markdown: rewrite the proxy-results block of '
                        'CONFIGS/<folder>/README.md from the per-seed files beside the page')
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
    # 1000 validation images, not the demo's 200: see the module docstring.
    add_data_args(parser, num_val=1000)
    args = parser.parse_args(argv)
    if args.sweep_weights and args.weights_from:
        parser.error('--sweep-weights tunes, --weights-from reports tuned weights: give one')
    if args.config_readmes and not args.markdown:
        parser.error('--config-readmes writes from the page\'s per-seed files: give --markdown')
    if args.row_seeds and (args.sweep_weights or args.diagnosis):
        parser.error('--row-seeds is for the reported tables: not with --sweep-weights or '
                     '--diagnosis')
    keys = [key for key, _ in args.row_seeds or []]
    for key in keys:
        if keys.count(key) > 1:
            parser.error(f'--row-seeds {key}=...: a row given twice')
    args.row_seeds = dict(args.row_seeds or [])
    if args.row_seeds:
        # the run's own rule (--weights-from's rows narrow it again when the run reads them)
        try:
            selected_rows(args, tuned={})
        except ValueError as error:
            parser.error(str(error))
    student = {*args.seeds, *args.row_seeds.get('student', ())}
    for key, seeds in args.row_seeds.items():
        if not set(seeds) <= student:
            parser.error(f'--row-seeds {key}=...: seeds {format_seed_ranges(set(seeds) - student)} '
                         'are not the student alone\'s (--seeds, --row-seeds student=...): '
                         'every gain is over the student alone')
    if args.diagnosis and (args.sweep_weights or args.weights_from):
        parser.error('--diagnosis runs at the shipped weights: no --sweep-weights/--weights-from')
    return args


def command_line(argv: Optional[Sequence[str]]) -> str:
    """This invocation, as the page prints it."""
    return 'python tools/bench_methods.py ' + shlex.join(
        sys.argv[1:] if argv is None else list(argv))


def main(argv: Optional[Sequence[str]] = None) -> dict:
    return run_leaderboard(parse_args(argv), command_line(argv))


if __name__ == '__main__':
    main()
