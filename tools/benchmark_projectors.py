"""Forward + backward time of the orthogonal projector maps (ours vs PyTorch's parametrisation).

Times what one training step pays per projector: materialise the ``C_t x C_s`` weight from its
free parameters, then back-propagate a gradient into them. The weight only changes at
``optimizer.step()``, so the map runs once per step and projector (the distiller materialises it
once and every level call / image reuses it): per-step cost = this time x number of projectors.

Usage::

    python tools/benchmark_projectors.py [--shapes 256x256 192x3024 384x3024] [--repeats 5]
        [--dense-repeats 1] [--skip-dense-above 4096] [--threads N] [--out results.json]

``--skip-dense-above C`` skips PyTorch's maps for ``C_t > C`` (its dense 3024-square matrix
exponential takes ~30 s per call on two CPU cores).
"""
import argparse
import json
import os
import statistics
import time
from typing import Callable, Dict, List

import torch
import torch.nn as nn
from torch.nn.utils import parametrizations

from vkd_mmdet.models.projectors import ORTHOGONAL_MAPS, OrthogonalProjector


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--shapes', nargs='+', default=['256x256', '192x3024', '384x3024'],
                        help='C_sxC_t pairs (student channels x teacher channels)')
    parser.add_argument('--maps', nargs='+', default=list(ORTHOGONAL_MAPS),
                        choices=ORTHOGONAL_MAPS)
    parser.add_argument('--repeats', type=int, default=5, help='timed runs of our maps')
    parser.add_argument('--dense-repeats', type=int, default=1,
                        help="timed runs of PyTorch's maps (slow for wide teachers)")
    parser.add_argument('--skip-dense-above', type=int, default=None,
                        help="skip PyTorch's maps when C_t exceeds this")
    parser.add_argument('--threads', type=int, default=None, help='torch.set_num_threads')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--out', default=None, help='write the results as JSON here')
    return parser.parse_args()


def time_map(weight_fn: Callable[[], torch.Tensor], params: List[torch.Tensor], repeats: int,
             device: torch.device) -> List[float]:
    """Seconds per materialise + backward, after one untimed warm-up."""
    times = []
    for i in range(repeats + 1):
        for param in params:
            param.grad = None
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        weight = weight_fn()
        weight.backward(torch.ones_like(weight))
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        if i:
            times.append(time.perf_counter() - start)
    return times


def benchmark_shape(in_channels: int, out_channels: int, orthogonal_map: str,
                    args: argparse.Namespace) -> Dict[str, object]:
    device = torch.device(args.device)
    ours = OrthogonalProjector(in_channels, out_channels, orthogonal_map).to(device)
    with torch.no_grad():  # away from the identity: a trained projector, not the init
        ours.raw_weight.normal_(0.0, 0.02)
    row: Dict[str, object] = dict(shape=f'{in_channels}x{out_channels}', map=orthogonal_map)
    times = time_map(lambda: ours.weight, [ours.raw_weight], args.repeats, device)
    row['ours_s'] = statistics.median(times)
    row['ours_spread_s'] = max(times) - min(times)
    if args.skip_dense_above is not None and out_channels > args.skip_dense_above:
        row['torch_s'] = None
        return row
    linear = nn.Linear(in_channels, out_channels, bias=False).to(device)
    parametrizations.orthogonal(linear, orthogonal_map=orthogonal_map)
    original = linear.parametrizations.weight.original
    with torch.no_grad():
        linear.parametrizations.weight[0].base.copy_(ours.base)
        original.copy_(ours.raw_weight)
        if orthogonal_map == 'householder':
            original.diagonal().fill_(-1.0)
    times = time_map(lambda: linear.weight, [original], args.dense_repeats, device)
    row['torch_s'] = statistics.median(times)
    # Same maths: report how far apart the two weights are.
    row['max_abs_diff'] = (linear.weight - ours.weight).abs().max().item()
    return row


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    print('| C_s x C_t | map | ours fwd+bwd (s) | PyTorch fwd+bwd (s) | speed-up | max |diff| |')
    print('|---|---|---|---|---|---|')
    for shape in args.shapes:
        in_channels, out_channels = (int(c) for c in shape.lower().split('x'))
        for orthogonal_map in args.maps:
            row = benchmark_shape(in_channels, out_channels, orthogonal_map, args)
            rows.append(row)
            dense = row['torch_s']
            print(f"| {row['shape']} | {orthogonal_map} | {row['ours_s']:.4f} | "
                  + (f"{dense:.4f} | {dense / row['ours_s']:.1f}x | {row['max_abs_diff']:.1e} |"
                     if dense is not None else 'skipped | | |'), flush=True)
    result = dict(device=args.device, threads=torch.get_num_threads(),
                  torch=torch.__version__, rows=rows,
                  note='the map runs once per optimizer step and projector')
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=2)


if __name__ == '__main__':
    main()
