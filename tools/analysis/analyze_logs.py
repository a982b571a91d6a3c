"""Summarise (and plot) the losses of a training log, per key, over iterations.

    python tools/analysis/analyze_logs.py WORK_DIR/<timestamp>/vis_data/scalars.json \
        [--keys loss loss_vkd_p3 ...] [--out curves.png]

Reads mmengine's json scalar log (one json object per logged step). Without ``--keys`` it takes
every ``loss*`` key, so the distillation terms (``loss_vkd_p3``, ``loss_nd``, ...) appear beside the
detector's. mmdet's ``analyze_logs.py`` groups by epoch (our iteration-based runs are one
"epoch") and needs seaborn; this reads the same file by iteration. ``--out`` needs matplotlib
(``pip install vkd_mmdet[demo]``).
"""
import argparse
import json
from typing import Dict, List, Optional, Sequence


def load_scalars(path: str) -> List[dict]:
    """The training steps of a json scalar log (validation lines have no ``loss``: dropped)."""
    with open(path) as f:
        steps = [json.loads(line) for line in f if line.strip()]
    return [step for step in steps if 'loss' in step]


def summarise(steps: List[dict], keys: Optional[Sequence[str]]) -> Dict[str, dict]:
    """``{key: {first, last, mean, n}}`` over the steps that log ``key``."""
    if keys is None:
        keys = sorted({key for step in steps for key in step if key.startswith('loss')})
    summary = {}
    for key in keys:
        values = [step[key] for step in steps if key in step]
        if not values:
            raise KeyError(f'--keys {key!r}: not in the log; it has {sorted(steps[0])}')
        summary[key] = dict(first=values[0], last=values[-1], mean=sum(values) / len(values),
                            n=len(values))
    return summary


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, dict]:
    parser = argparse.ArgumentParser(description='Summarise the losses of a training log')
    parser.add_argument('log', help="mmengine's vis_data/scalars.json (or <timestamp>.json)")
    parser.add_argument('--keys', nargs='+', help='keys to report (default: every loss*)')
    parser.add_argument('--out', help='write a plot of the keys over iterations here')
    args = parser.parse_args(argv)
    steps = load_scalars(args.log)
    summary = summarise(steps, args.keys)
    print(f'{"key":<24}{"first":>10}{"last":>10}{"mean":>10}{"n":>6}')
    for key, s in summary.items():
        print(f'{key:<24}{s["first"]:>10.4f}{s["last"]:>10.4f}{s["mean"]:>10.4f}{s["n"]:>6}')
    if args.out:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(7, 4))
        for key in summary:
            points = [(step['iter'], step[key]) for step in steps if key in step]
            ax.plot(*zip(*points), label=key)
        ax.set_xlabel('iteration')
        ax.legend(fontsize='small')
        fig.savefig(args.out, dpi=100, bbox_inches='tight')
    return summary


if __name__ == '__main__':
    main()
