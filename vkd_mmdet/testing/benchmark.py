"""What distillation costs: a distillation train step against the student step + teacher forward.

(In ``testing``, the top layer: it builds the distiller with random weights, as tests do.)

:func:`benchmark_distiller` builds the ``DetectionDistiller`` of a config with pretrained init
switched off and a random teacher checkpoint (saved to a temporary folder: nothing is
downloaded; the cost does not depend on the weights), then times, interleaved on the same random
batch in one process:

- (a) ``student``: the student's own train step (forward, backward, optimizer step);
- (b) ``teacher``: the *plain* teacher forward, backbone + neck in float32 under ``no_grad``
  (BatchNorms unfolded, NCHW; its preprocessing included): the old limit;
- (b') ``teacher_fast``: the teacher forward the distiller runs (:meth:`teacher_forward`: folded
  BatchNorms, ``channels_last`` where faster, ``inference_mode``, ``teacher_precision``);
- (c) ``distill``: the distiller's train step (what training runs);
- (d) ``losses``: the distillation losses alone, ``distill_loss`` forward + backward on one
  step's neck features (projectors + normalisation + losses of every level).

Ratios: ``overhead_ratio = (c) / ((a) + (b))`` (below 1: distillation costs less than a student
step plus a plain teacher forward), ``fast_overhead_ratio = (c) / ((a) + (b'))``,
``teacher_ratio = (b') / (b)``, ``distill_loss_share = (d) / (c)``,
``memory_ratio = peak (c) / (peak (a) + peak (b))``; ``teacher_rel_error`` is the largest
relative L2 error of the fast teacher's features against the plain ones.
"""
import contextlib
import copy
import os
import os.path as osp
import platform
import tempfile
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import torch
import torch.nn as nn
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.config import Config
from mmengine.optim import OptimWrapper, build_optim_wrapper
from mmengine.registry import init_default_scope
from torch import Tensor

from ..models.projectors import OrthogonalProjector
from ..models.utils import capture_outputs
from ..utils.benchmark import PeakMemory, interleaved_measurements
from ..utils.model_cfg import build_model, resolve_model_cfg
from ..utils.teacher_checkpoint import load_teacher_checkpoint
from .tiny_detectors import save_random_checkpoint

VARIANTS = ('student', 'teacher', 'teacher_fast', 'distill', 'losses')
PRETRAINED_OFF = {'model.student.backbone.init_cfg': None, 'model.teacher.backbone.init_cfg': None}


def benchmark_distiller(config: str,
                        iters: int = 10,
                        warmup: int = 2,
                        batch: int = 2,
                        size: Tuple[int, int] = (512, 512),
                        device: str = 'cpu',
                        teacher_precision: Optional[str] = None,
                        seed: int = 0,
                        cfg_options: Optional[dict] = None,
                        verbose: bool = True) -> dict:
    """Measure the variants above on ``batch`` random images of ``size`` (H, W).

    Args:
        config (str): a config whose ``model`` is a ``DetectionDistiller``.
        iters (int): timed rounds (each runs every variant once). Defaults to 10.
        warmup (int): untimed rounds first. Defaults to 2.
        batch (int): images per batch. Defaults to 2.
        size (tuple[int, int]): image height and width. Defaults to (512, 512).
        device (str): ``'cpu'`` or ``'cuda'``. Defaults to 'cpu'.
        teacher_precision (str, optional): overrides ``model.teacher_precision``.
        seed (int): seeds the weights and the batch. Defaults to 0.
        cfg_options (dict, optional): config overrides (``--cfg-options``).
        verbose (bool): print each round's times to stderr. Defaults to True.

    Returns:
        dict: every timing (``times_s``, ``median_s``, ``spread_s``), peak memory (``peak_mib``),
        the ratios above, the machine and the settings (JSON-serialisable).
    """
    torch.manual_seed(seed)
    device = torch.device(device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise RuntimeError('--device cuda: no CUDA device is available')
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(PRETRAINED_OFF)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if teacher_precision is not None:
        cfg.model.teacher_precision = teacher_precision
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    if cfg.model.get('type') != 'DetectionDistiller':
        raise ValueError(f'{config}: model.type must be DetectionDistiller, '
                         f'got {cfg.model.get("type")!r}')
    with tempfile.TemporaryDirectory() as tmp_dir:
        model, plain_teacher = _build(cfg, tmp_dir, seed, device)
    distill_optim = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    student_optim = build_optim_wrapper(model.student, copy.deepcopy(cfg.optim_wrapper))
    height, width = size
    # demo_mm_inputs draws labels in [1, num_classes): label 1 only, valid for any detector
    # with two classes or more.
    data = demo_mm_inputs(batch, [(3, height, width)] * batch, num_items=[5] * batch,
                          num_classes=2)
    steps = step_functions(model, plain_teacher, distill_optim, student_optim, data)
    with count_projector_maps() as maps:
        steps['distill']()
    teacher_rel_error = _teacher_rel_error(model, plain_teacher, data)

    results = interleaved_measurements(steps, iters, warmup, PeakMemory(device), verbose)
    median = {name: results[name]['median_s'] for name in VARIANTS}
    peak = {name: results[name]['peak_mib'] for name in VARIANTS}
    return dict(
        config=config,
        device=torch.cuda.get_device_name(device) if device.type == 'cuda'
        else platform.processor() or platform.machine(),
        threads=torch.get_num_threads(),
        cpu_count=os.cpu_count(),
        load_average=list(os.getloadavg()) if hasattr(os, 'getloadavg') else None,
        torch=torch.__version__,
        batch=batch,
        size=list(size),
        iters=iters,
        optim_wrapper=type(distill_optim).__name__,
        teacher_precision=model.teacher_precision,
        median_s=median,
        spread_s={name: results[name]['spread_s'] for name in VARIANTS},
        times_s={name: results[name]['times_s'] for name in VARIANTS},
        peak_mib=peak,
        memory_kind='cuda max_memory_allocated' if device.type == 'cuda' else 'peak RSS',
        overhead_ratio=median['distill'] / (median['student'] + median['teacher']),
        fast_overhead_ratio=median['distill'] / (median['student'] + median['teacher_fast']),
        teacher_ratio=median['teacher_fast'] / median['teacher'],
        teacher_rel_error=teacher_rel_error,
        distill_loss_share=median['losses'] / median['distill'],
        memory_ratio=peak['distill'] / max(peak['student'] + peak['teacher'], 1e-9),
        projector_maps_per_step=maps[0],
        num_projectors=sum(isinstance(m, OrthogonalProjector) for m in model.modules()),
    )


def _build(cfg: Config, tmp_dir: str, seed: int,
           device: torch.device) -> Tuple[nn.Module, nn.Module]:
    """The distiller (random teacher checkpoint) and the same teacher loaded plain (unfolded)."""
    teacher_cfg = resolve_model_cfg(cfg.model.teacher, 'teacher')
    # A random stand-in for the zoo checkpoint: the cost does not depend on the weights.
    cfg.model.teacher_ckpt = save_random_checkpoint(teacher_cfg, osp.join(tmp_dir, 'teacher.pth'),
                                                    seed=seed)
    model = MODELS.build(cfg.model).to(device).train()
    plain_teacher = build_model(teacher_cfg, MODELS)
    load_teacher_checkpoint(plain_teacher, cfg.model.teacher_ckpt, True, False)
    return model, plain_teacher.requires_grad_(False).eval().to(device)


def step_functions(model: nn.Module, plain_teacher: nn.Module, distill_optim: OptimWrapper,
                   student_optim: OptimWrapper, data: dict) -> Dict[str, Callable[[], None]]:
    """The variants (a), (b), (b'), (c), (d) as argument-free callables on ``data``."""
    teacher = model.teacher
    # (d) works on one step's neck features, detached: only the losses' graph is timed.
    with capture_outputs(model.student.neck) as neck_outputs:
        model.train_step(copy.deepcopy(data), distill_optim)
    features: Dict[str, List[Tensor]] = {'student': [f.detach() for f in neck_outputs[-1]]}
    batch = model.student.data_preprocessor(copy.deepcopy(data), True)
    features['teacher'] = model.teacher_forward(
        teacher.extract_feat, teacher.data_preprocessor(copy.deepcopy(data), False)['inputs'])

    def student_step() -> None:
        model.student.train_step(data, student_optim)

    def plain_teacher_forward() -> None:
        with torch.no_grad():
            plain_teacher.extract_feat(plain_teacher.data_preprocessor(data, False)['inputs'])

    def fast_teacher_forward() -> None:
        with distill_optim.optim_context(model):
            model.teacher_forward(teacher.extract_feat,
                                  teacher.data_preprocessor(data, False)['inputs'])

    def distill_step() -> None:
        model.train_step(data, distill_optim)

    def losses_only() -> None:
        student = [f.clone().requires_grad_() for f in features['student']]
        losses = model.distill_loss(student, features['teacher'], batch['inputs'],
                                    batch['data_samples'])
        sum(losses.values()).backward()

    return dict(student=student_step, teacher=plain_teacher_forward,
                teacher_fast=fast_teacher_forward, distill=distill_step, losses=losses_only)


def _teacher_rel_error(model: nn.Module, plain_teacher: nn.Module, data: dict) -> float:
    """Largest relative L2 error of the fast teacher's features against the plain fp32 ones."""
    inputs = plain_teacher.data_preprocessor(copy.deepcopy(data), False)['inputs']
    with torch.no_grad():
        expected = plain_teacher.extract_feat(inputs)
    got = model.teacher_forward(model.teacher.extract_feat, inputs)
    return max(((g - e).norm() / e.norm().clamp_min(1e-12)).item()
               for g, e in zip(got, expected))


@contextlib.contextmanager
def count_projector_maps() -> Iterator[List[int]]:
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


MARKDOWN_HEADER = ('| config | device | batch | precision | (a) student ms | '
                   "(b) plain teacher ms | (b') fast teacher ms | (c) distill ms | "
                   "(c)/((a)+(b)) | (c)/((a)+(b')) | "
                   "(b')/(b) | losses/(c) | peak MiB a / b / c (c/(a+b)) | load avg |\n"
                   '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|')


def markdown_row(r: dict) -> str:
    """One row under :data:`MARKDOWN_HEADER` (medians +- half the min-max spread)."""
    med, spread, peak = r['median_s'], r['spread_s'], r['peak_mib']

    def cell(name: str) -> str:
        return f'{1000 * med[name]:.0f} ± {1000 * spread[name] / 2:.0f}'

    load = '' if r['load_average'] is None else f"{r['load_average'][0]:.1f}"
    return (f"| {osp.basename(r['config'])} | {r['device']} ({r['threads']} thr) | "
            f"{r['batch']}x{r['size'][0]}x{r['size'][1]} | {r['teacher_precision']} | "
            f"{cell('student')} | {cell('teacher')} | {cell('teacher_fast')} | "
            f"{cell('distill')} | {r['overhead_ratio']:.3f} | {r['fast_overhead_ratio']:.3f} | "
            f"{r['teacher_ratio']:.2f} | {100 * r['distill_loss_share']:.1f}% | "
            f"{peak['student']:.0f} / {peak['teacher']:.0f} / {peak['distill']:.0f} "
            f"({r['memory_ratio']:.2f}) | {load} |")
