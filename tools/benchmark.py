"""What distillation costs: a distillation train step against the student step + teacher forward.

Builds the ``DetectionDistiller`` of CONFIG with pretrained init switched off and a random teacher
checkpoint (saved to a temporary folder: nothing is downloaded), then times, interleaved on the
same random batch in one process:

- (a) the student's own train step (``student.train_step``: forward, backward, optimizer step);
- (b) the teacher's backbone + neck forward under ``no_grad`` (its preprocessing included);
- (c) the distiller's train step (what training runs);
- (d) the distillation losses alone: ``distill_loss`` forward + backward on the neck features of
  one step (projectors + normalisation + losses of every level).

It reports the median and spread (max - min) of each, the overhead ratio ``(c) / ((a) + (b))``
(1.0: distillation costs exactly a teacher forward), the share ``(d) / (c)``, and the peak memory
of each variant above what was resident before it (CPU: peak RSS, reset per variant through
``/proc/self/clear_refs``; CUDA: ``torch.cuda.max_memory_allocated``).

Usage::

    python tools/benchmark.py configs/vkd/faster_rcnn_r101_r18.py --iters 10 --batch 2 \\
        --size 512 512 --device cpu --out work_dirs/benchmark.json
"""
import argparse
import contextlib
import copy
import ctypes
import json
import os
import os.path as osp
import platform
import statistics
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional

import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.config import Config, DictAction
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

from vkd_mmdet.models.projectors import OrthogonalProjector
from vkd_mmdet.testing import save_random_checkpoint
from vkd_mmdet.utils import resolve_model_cfg

VARIANTS = ('student', 'teacher', 'distill', 'losses')
PRETRAINED_OFF = {'model.student.backbone.init_cfg': None, 'model.teacher.backbone.init_cfg': None}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Time a distillation step against its parts')
    parser.add_argument('config', help='distillation config (a DetectionDistiller model)')
    parser.add_argument('--iters', type=int, default=10, help='timed iterations per variant')
    parser.add_argument('--warmup', type=int, default=2, help='untimed iterations first')
    parser.add_argument('--batch', type=int, default=2, help='images per batch')
    parser.add_argument('--size', type=int, nargs=2, default=[512, 512], metavar=('H', 'W'),
                        help='image height and width')
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--threads', type=int, default=None, help='torch.set_num_threads (CPU)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, as in mmdet tools (key=value)')
    parser.add_argument('--out', default=None, help='write the results as JSON here')
    return parser.parse_args(argv)


class PeakMemory:
    """Peak memory of a block above what was in use when it started, in MiB."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cpu_reset = device.type == 'cpu' and osp.exists('/proc/self/clear_refs')
        if device.type == 'cpu':
            # Freed tensors go back to the OS (glibc keeps large freed blocks otherwise and the
            # next variant would look free): mmap every allocation >= 64 KiB.
            with contextlib.suppress(OSError, AttributeError):
                ctypes.CDLL('libc.so.6').mallopt(-3, 64 * 1024)  # M_MMAP_THRESHOLD

    @contextlib.contextmanager
    def measure(self, record: List[float]):
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            before = torch.cuda.memory_allocated(self.device)
            yield
            torch.cuda.synchronize(self.device)
            record.append((torch.cuda.max_memory_allocated(self.device) - before) / 2**20)
            return
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL('libc.so.6').malloc_trim(0)
        if self.cpu_reset:
            with open('/proc/self/clear_refs', 'w') as f:
                f.write('5')  # reset the peak RSS (VmHWM) to the current RSS
        before = _proc_status_kib('VmRSS')
        yield
        record.append((_proc_status_kib('VmHWM') - before) / 1024)


def _proc_status_kib(key: str) -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1])
    raise RuntimeError(f'/proc/self/status has no {key}')


@contextlib.contextmanager
def count_projector_maps():
    """Count materialisations of every OrthogonalProjector's weight inside the block."""
    counter = [0]
    weight = OrthogonalProjector.weight

    def counting(self):
        counter[0] += 1
        return weight.fget(self)

    OrthogonalProjector.weight = property(counting, doc=weight.__doc__)
    try:
        yield counter
    finally:
        OrthogonalProjector.weight = weight


def build(args: argparse.Namespace, tmp_dir: str):
    """The distiller (pretrained off, random teacher checkpoint) and one optimizer per step."""
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(PRETRAINED_OFF)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    if cfg.model.get('type') != 'DetectionDistiller':
        raise ValueError(f'{args.config}: model.type must be DetectionDistiller, '
                         f'got {cfg.model.get("type")!r}')
    teacher_cfg = resolve_model_cfg(cfg.model.teacher, 'teacher')
    # A random stand-in for the zoo checkpoint: the cost does not depend on the weights.
    cfg.model.teacher_ckpt = save_random_checkpoint(teacher_cfg, osp.join(tmp_dir, 'teacher.pth'),
                                                    seed=args.seed)
    model = MODELS.build(cfg.model).to(args.device).train()
    distill_optim = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    student_optim = build_optim_wrapper(model.student, copy.deepcopy(cfg.optim_wrapper))
    return model, distill_optim, student_optim


def make_batch(args: argparse.Namespace) -> dict:
    height, width = args.size
    # demo_mm_inputs draws labels in [1, num_classes): label 1 only, valid for any detector
    # with two classes or more.
    return demo_mm_inputs(args.batch, [(3, height, width)] * args.batch,
                          num_items=[5] * args.batch, num_classes=2)


def step_functions(model, distill_optim, student_optim, data) -> Dict[str, Callable[[], None]]:
    teacher = model.teacher
    # (d) works on one step's neck features, detached: only the losses' graph is timed.
    features = {}

    def capture(_module, _args, out):
        features['student'] = [f.detach() for f in out]

    handle = model.student.neck.register_forward_hook(capture)
    model.train_step(copy.deepcopy(data), distill_optim)
    handle.remove()
    batch = model.student.data_preprocessor(copy.deepcopy(data), True)
    with torch.no_grad():
        features['teacher'] = teacher.extract_feat(
            teacher.data_preprocessor(copy.deepcopy(data), False)['inputs'])

    def student_step():
        model.student.train_step(data, student_optim)

    def teacher_forward():
        with torch.no_grad(), distill_optim.optim_context(model):
            teacher.extract_feat(teacher.data_preprocessor(data, False)['inputs'])

    def distill_step():
        model.train_step(data, distill_optim)

    def losses_only():
        student = [f.clone().requires_grad_() for f in features['student']]
        losses = model.distill_loss(student, features['teacher'], batch['inputs'],
                                    batch['data_samples'])
        sum(losses.values()).backward()

    return dict(student=student_step, teacher=teacher_forward, distill=distill_step,
                losses=losses_only)


def run(args: argparse.Namespace) -> dict:
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise RuntimeError('--device cuda: no CUDA device is available')
    with tempfile.TemporaryDirectory() as tmp_dir:
        model, distill_optim, student_optim = build(args, tmp_dir)
    data = make_batch(args)
    steps = step_functions(model, distill_optim, student_optim, data)
    with count_projector_maps() as maps:
        steps['distill']()
    num_projectors = sum(isinstance(m, OrthogonalProjector) for m in model.modules())

    memory = PeakMemory(device)
    times: Dict[str, List[float]] = {name: [] for name in VARIANTS}
    peaks: Dict[str, List[float]] = {name: [] for name in VARIANTS}
    for i in range(args.warmup + args.iters):
        for name in VARIANTS:  # interleaved: slow drifts of the machine hit every variant
            with memory.measure(peaks[name]):
                if device.type == 'cuda':
                    torch.cuda.synchronize(device)
                start = time.perf_counter()
                steps[name]()
                if device.type == 'cuda':
                    torch.cuda.synchronize(device)
                elapsed = time.perf_counter() - start
            if i >= args.warmup:
                times[name].append(elapsed)
        print(f'iteration {i + 1}/{args.warmup + args.iters}' + (' (warm-up)' if i < args.warmup
              else '') + ': ' + ', '.join(f'{name} {1000 * times[name][-1]:.0f} ms'
                                         for name in VARIANTS if i >= args.warmup),
              file=sys.stderr, flush=True)

    median = {name: statistics.median(values) for name, values in times.items()}
    peak = {name: max(values[args.warmup:] or values) for name, values in peaks.items()}
    result = dict(
        config=args.config,
        device=torch.cuda.get_device_name(device) if device.type == 'cuda'
        else platform.processor() or platform.machine(),
        threads=torch.get_num_threads(),
        cpu_count=os.cpu_count(),
        torch=torch.__version__,
        batch=args.batch,
        size=list(args.size),
        iters=args.iters,
        optim_wrapper=type(distill_optim).__name__,
        median_s={name: median[name] for name in VARIANTS},
        spread_s={name: max(times[name]) - min(times[name]) for name in VARIANTS},
        times_s=times,
        peak_mib=peak,
        memory_kind='cuda max_memory_allocated' if device.type == 'cuda' else 'peak RSS',
        overhead_ratio=median['distill'] / (median['student'] + median['teacher']),
        distill_loss_share=median['losses'] / median['distill'],
        memory_ratio=peak['distill'] / max(peak['student'] + peak['teacher'], 1e-9),
        projector_maps_per_step=maps[0],
        num_projectors=num_projectors,
    )
    result['markdown_row'] = markdown_row(result)
    return result


def markdown_row(r: dict) -> str:
    """``| config | device | batch x size | (a) | (b) | (c) | ratio | losses | memory |``."""
    med, spread, peak = r['median_s'], r['spread_s'], r['peak_mib']

    def cell(name):
        return f'{1000 * med[name]:.0f} ± {1000 * spread[name] / 2:.0f}'

    return (f"| {osp.basename(r['config'])} | {r['device']} ({r['threads']} thr) | "
            f"{r['batch']}x{r['size'][0]}x{r['size'][1]} | {cell('student')} | "
            f"{cell('teacher')} | {cell('distill')} | {r['overhead_ratio']:.3f} | "
            f"{100 * r['distill_loss_share']:.1f}% | {peak['student']:.0f} / "
            f"{peak['teacher']:.0f} / {peak['distill']:.0f} ({r['memory_ratio']:.2f}) |")


MARKDOWN_HEADER = ('| config | device | batch | (a) student ms | (b) teacher ms | '
                   '(c) distill ms | (c)/((a)+(b)) | losses/(c) | peak MiB a / b / c '
                   '(c/(a+b)) |\n|---|---|---|---|---|---|---|---|---|')


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    result = run(args)
    print(MARKDOWN_HEADER)
    print(result['markdown_row'])
    print(f"projector weight maps per step: {result['projector_maps_per_step']} "
          f"({result['num_projectors']} projectors)")
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == '__main__':
    main()
