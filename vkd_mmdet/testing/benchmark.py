"""What distillation costs: a distillation train step against the student step + teacher forward.

(In ``testing``, the top layer: it builds the distiller with random weights, as tests do.)

:func:`benchmark_distiller` builds the ``DetectionDistiller`` of a config with pretrained init
switched off and a random teacher checkpoint (saved to a temporary folder: nothing is
downloaded; the cost does not depend on the weights), then times, interleaved on the same random
batch in one process:

- (a) ``student``: the student's own train step (forward, backward, optimizer step);
- (b) ``teacher``: the *plain* teacher forward, backbone + neck in float32 under ``no_grad``
  (BatchNorms unfolded, NCHW; its preprocessing included): the old limit; with dense-head
  losses (LD, CrossKD) its head too, in (b') as well;
- (b') ``teacher_fast``: the teacher forward the distiller runs (:meth:`teacher_forward`: folded
  BatchNorms, ``channels_last`` where faster, ``inference_mode``, ``teacher_precision``);
- (c) ``distill``: the distiller's train step (what training runs);
- (d) ``losses``: the distillation losses alone, ``distill_loss`` forward + backward on one
  step's neck features (projectors + normalisation + losses of every level), plus the
  dense-head losses on that step's recorded head outputs (CrossKD's cross-head pass included).

Ratios (:data:`RATIOS`), each the mean of its per-round ratios with a paired Student-t
confidence interval (:func:`~vkd_mmdet.utils.benchmark.paired_ratio_interval`):
``overhead_ratio = (c) / ((a) + (b))`` (below 1: distillation costs less than a student step plus
a plain teacher forward), ``fast_overhead_ratio = (c) / ((a) + (b'))``,
``parts_ratio = (c) / ((a) + (b') + (d))`` (above 1: the step costs more than its parts),
``teacher_ratio = (b') / (b)``, ``distill_loss_share = (d) / (c)``. With ``target_ci`` the rounds
go on until every interval is that narrow or ``time_limit_s`` runs out
(:class:`~vkd_mmdet.utils.benchmark.StopRule`). ``memory_ratio = peak (c) / (peak (a) +
peak (b))``; ``teacher_rel_error`` is the largest relative L2 error of the fast teacher's
features against the plain ones. ``breakdown``: where (c) goes
(:func:`~vkd_mmdet.testing.step_breakdown.step_breakdown`).
"""
import contextlib
import copy
import os
import os.path as osp
import platform
import tempfile
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.config import Config
from mmengine.optim import OptimWrapper, build_optim_wrapper
from mmengine.registry import init_default_scope
from torch import Tensor

from ..models.distillers.head_distillation import head_distillation_step
from ..models.projectors import OrthogonalProjector
from ..models.utils import capture_outputs
from ..models.utils.dense_head_outputs import HeadOutputs
from ..utils.benchmark import (
    PeakMemory,
    Ratio,
    StopRule,
    interleaved_measurements,
    peak_memory_pass,
    round_ratios,
)
from ..utils.model_cfg import build_model, resolve_model_cfg
from ..utils.teacher_checkpoint import load_teacher_checkpoint
from .step_breakdown import step_breakdown
from .tiny_detectors import save_random_checkpoint

VARIANTS = ('student', 'teacher', 'teacher_fast', 'distill', 'losses')
RATIOS: Dict[str, Ratio] = dict(
    overhead_ratio=(('distill',), ('student', 'teacher')),
    fast_overhead_ratio=(('distill',), ('student', 'teacher_fast')),
    parts_ratio=(('distill',), ('student', 'teacher_fast', 'losses')),
    teacher_ratio=(('teacher_fast',), ('teacher',)),
    distill_loss_share=(('losses',), ('distill',)))
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
                        verbose: bool = True,
                        target_ci: Optional[float] = None,
                        time_limit_s: float = 3600.0,
                        max_iters: int = 200,
                        confidence: float = 0.95,
                        breakdown_iters: int = 3) -> dict:
    """Measure the variants above on ``batch`` random images of ``size`` (H, W).

    Args:
        config (str): a config whose ``model`` is a ``DetectionDistiller``.
        iters (int): timed rounds (each runs every variant once); with ``target_ci``, the
            fewest. Defaults to 10.
        warmup (int): untimed rounds first. Defaults to 2.
        batch (int): images per batch. Defaults to 2.
        size (tuple[int, int]): image height and width. Defaults to (512, 512).
        device (str): ``'cpu'`` or ``'cuda'``. Defaults to 'cpu'.
        teacher_precision (str, optional): overrides ``model.teacher_precision``.
        seed (int): seeds the weights and the batch. Defaults to 0.
        cfg_options (dict, optional): config overrides (``--cfg-options``).
        verbose (bool): print each round's times to stderr. Defaults to True.
        target_ci (float, optional): go on with rounds until every ratio's confidence interval
            has at most this half-width (e.g. 0.03), within ``time_limit_s``.
        time_limit_s (float): with ``target_ci``, the rounds' wall-clock budget (warm-up
            included). Defaults to 3600.
        max_iters (int): with ``target_ci``, the most timed rounds. Defaults to 200.
        confidence (float): the intervals' level. Defaults to 0.95.
        breakdown_iters (int): distillation steps timed phase by phase after the rounds
            (0: no breakdown). Defaults to 3.

    Returns:
        dict: every timing (``times_s``, ``median_s``, ``spread_s``), peak memory (``peak_mib``),
        the ratios above (their interval in ``ratios``), ``rounds`` and ``stop_reason``, the
        ``breakdown``, the machine and the settings (JSON-serialisable).
    """
    if iters < 2:
        raise ValueError(f'--iters {iters}: a confidence interval needs at least 2 timed rounds')
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
    # Steps repeated on one batch from random weights diverge within a few rounds at real size;
    # the NaN guard (which watches every optimizer stepping the distiller's parameters, the
    # student-alone one included) would skip, then stop, the timed steps. Its own cost (one
    # isfinite pass over the gradients per step) is therefore not in these timings.
    cfg.model.nonfinite_guard = dict(enabled=False)
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
    steps['student']()  # both optimizers hold their state (momenta) from here
    teacher_rel_error = _teacher_rel_error(model, plain_teacher, data)
    # Every step starts from these weights: steps repeated on one batch from random weights
    # drift (at 512 px they diverge within a few rounds), and with them the work of a step (the
    # proposals NMS keeps, the RoIs sampled, denormal arithmetic): the student's step took
    # 3.2 to 7.8 s across the rounds of one run without this.
    initial = TrainingState(model, [distill_optim, student_optim])

    rounds = iters if target_ci is None else StopRule(
        RATIOS, target_ci, time_limit_s, min_iters=iters, max_iters=max_iters,
        confidence=confidence)
    load_start = _load_average()
    measured = interleaved_measurements(steps, rounds, warmup, verbose=verbose,
                                        before_step=initial.restore, device=device)
    results = measured['steps']
    times = {name: results[name]['times_s'] for name in VARIANTS}
    ratios = round_ratios(times, RATIOS, confidence)
    load_end = _load_average()
    initial.restore()
    breakdown = step_breakdown(model, distill_optim, data, breakdown_iters) \
        if breakdown_iters else None
    # Memory in a pass of its own, last: on the CPU PeakMemory makes every large allocation a
    # fresh mmap (so that a step's peak is its own), whose page faults would have slowed, and
    # scattered, the timed steps.
    peak = peak_memory_pass(steps, PeakMemory(device), before_step=initial.restore)
    return dict(
        config=config,
        device=torch.cuda.get_device_name(device) if device.type == 'cuda'
        else platform.processor() or platform.machine(),
        threads=torch.get_num_threads(),
        cpu_count=os.cpu_count(),
        load_average=load_end,
        load_average_start=load_start,
        torch=torch.__version__,
        batch=batch,
        size=list(size),
        iters=iters,
        rounds=measured['rounds'],
        stop_reason=measured['stop_reason'],
        target_ci=target_ci,
        time_limit_s=time_limit_s if target_ci is not None else None,
        rounds_elapsed_s=measured['elapsed_s'],
        interval=f'paired Student-t, {100 * confidence:g} %, on the per-round ratios',
        optim_wrapper=type(distill_optim).__name__,
        teacher_precision=model.teacher_precision,
        median_s={name: results[name]['median_s'] for name in VARIANTS},
        spread_s={name: results[name]['spread_s'] for name in VARIANTS},
        times_s=times,
        peak_mib=peak,
        memory_kind='cuda max_memory_allocated' if device.type == 'cuda' else 'peak RSS',
        ratios=ratios,
        **{name: interval['mean'] for name, interval in ratios.items()},
        target_reached=None if target_ci is None else all(
            interval['half_width'] <= target_ci for interval in ratios.values()),
        teacher_rel_error=teacher_rel_error,
        memory_ratio=peak['distill'] / max(peak['student'] + peak['teacher'], 1e-9),
        projector_maps_per_step=maps[0],
        num_projectors=sum(isinstance(m, OrthogonalProjector) for m in model.modules()),
        breakdown=breakdown,
    )


class TrainingState:
    """A copy of a model's state (parameters, buffers) and of its optimizers' states, to restore.

    The benchmark restores it before every timed step (untimed), so that each round times the
    same computation from the same weights.
    """

    def __init__(self, model: nn.Module, optim_wrappers: Sequence[OptimWrapper]) -> None:
        self.model = model
        self.optim_wrappers = optim_wrappers
        self.model_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        # the wrappers' states: the optimizers' and, for AmpOptimWrapper, the loss scaler's
        self.optim_states = [copy.deepcopy(o.state_dict()) for o in optim_wrappers]

    def restore(self) -> None:
        """Put the copied state back and clear every gradient (a step that left gradients,
        e.g. the losses alone, must not add to the next step's)."""
        self.model.load_state_dict(self.model_state)
        self.model.zero_grad(set_to_none=True)
        for wrapper, state in zip(self.optim_wrappers, self.optim_states):
            # load_state_dict keeps references into its argument: hand it a copy
            wrapper.load_state_dict(copy.deepcopy(state))


def _load_average() -> Optional[List[float]]:
    return list(os.getloadavg()) if hasattr(os, 'getloadavg') else None


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
    """The variants (a), (b), (b'), (c), (d) as argument-free callables on ``data``.

    With dense-head losses (LD, CrossKD) both teacher forwards run the teacher's head too, and
    (d) is the FPN losses plus the head losses on one step's recorded student head outputs.
    """
    teacher = model.teacher
    head_step = head_distillation_step(model)
    batch = model.student.data_preprocessor(copy.deepcopy(data), True)
    teacher_inputs = teacher.data_preprocessor(copy.deepcopy(data), False)['inputs']
    # (d) works on one step's neck features and head outputs, detached: only the losses' graph
    # is timed.
    if head_step is None:
        teacher_feats = model.teacher_forward(teacher.extract_feat, teacher_inputs)
        student_head = contextlib.nullcontext()
    else:
        teacher_feats = head_step.teacher_forward(teacher_inputs)
        student_head = head_step.capture_student()
    with capture_outputs(model.student.neck) as neck_outputs, student_head, torch.no_grad():
        model.student.loss(batch['inputs'], batch['data_samples'])
    student_feats = neck_outputs[-1]
    # (b') replaces the step's teacher outputs every round: (d) keeps its own
    student_record, teacher_outputs = (dict(head_step.student_record), head_step.teacher_outputs) \
        if head_step else ({}, None)

    def student_step() -> None:
        model.student.train_step(data, student_optim)

    def plain_teacher_forward() -> None:
        with torch.no_grad():
            inputs = plain_teacher.data_preprocessor(data, False)['inputs']
            feats = plain_teacher.extract_feat(inputs)
            if head_step is not None:
                plain_teacher.bbox_head(feats)

    def fast_teacher_forward() -> None:
        inputs = teacher.data_preprocessor(data, False)['inputs']
        with distill_optim.optim_context(model):
            if head_step is None:
                model.teacher_forward(teacher.extract_feat, inputs)
            else:
                head_step.teacher_forward(inputs)

    def distill_step() -> None:
        model.train_step(data, distill_optim)

    def losses_only() -> None:
        student = [f.clone().requires_grad_() for f in student_feats]
        losses = model.distill_loss(student, teacher_feats, batch['inputs'],
                                    batch['data_samples'])
        if head_step is not None:
            head_step.teacher_outputs = teacher_outputs
            head_step.student_record = dict(student_record,
                                            outputs=_leaf_outputs(student_record['outputs']))
            losses.update(head_step.losses(batch['data_samples'], model._generator()))
        sum(losses.values()).backward()

    return dict(student=student_step, teacher=plain_teacher_forward,
                teacher_fast=fast_teacher_forward, distill=distill_step, losses=losses_only)


def _leaf_outputs(outputs: HeadOutputs) -> HeadOutputs:
    """Copies of a step's head outputs (per level ``(N, C, H_l, W_l)``: logits, box
    predictions, tower features), each a leaf that takes gradients."""
    def leaves(tensors: List[Tensor]) -> List[Tensor]:
        return [t.detach().clone().requires_grad_() for t in tensors]
    return HeadOutputs(leaves(outputs.cls_scores), leaves(outputs.bbox_preds),
                       {tower: leaves(feats) for tower, feats in outputs.towers.items()})


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


MARKDOWN_HEADER = ('| config | device | batch | precision | rounds (stop) | (a) student ms | '
                   "(b) plain teacher ms | (b') fast teacher ms | (c) distill ms | (d) losses ms | "
                   "(c)/((a)+(b)) | (c)/((a)+(b')) | (c)/((a)+(b')+(d)) | (b')/(b) | (d)/(c) | "
                   'peak MiB a / b / c (c/(a+b)) | load avg start / end |\n'
                   '|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|')


def markdown_row(r: dict) -> str:
    """One row under :data:`MARKDOWN_HEADER`: times as median ± half the min-max spread, ratios
    as mean ± the half-width of their confidence interval (``r['interval']``)."""
    med, spread, peak, ratios = r['median_s'], r['spread_s'], r['peak_mib'], r['ratios']

    def cell(name: str) -> str:
        return f'{1000 * med[name]:.0f} ± {1000 * spread[name] / 2:.0f}'

    def ratio(name: str) -> str:
        return f"{ratios[name]['mean']:.3f} ± {ratios[name]['half_width']:.3f}"

    def load(values: Optional[List[float]]) -> str:
        return '?' if values is None else f'{values[0]:.1f}'

    return (f"| {osp.basename(r['config'])} | {r['device']} ({r['threads']} thr) | "
            f"{r['batch']}x{r['size'][0]}x{r['size'][1]} | {r['teacher_precision']} | "
            f"{r['rounds']} ({r['stop_reason']}) | "
            f"{cell('student')} | {cell('teacher')} | {cell('teacher_fast')} | "
            f"{cell('distill')} | {cell('losses')} | {ratio('overhead_ratio')} | "
            f"{ratio('fast_overhead_ratio')} | {ratio('parts_ratio')} | {ratio('teacher_ratio')} | "
            f"{ratio('distill_loss_share')} | "
            f"{peak['student']:.0f} / {peak['teacher']:.0f} / {peak['distill']:.0f} "
            f"({r['memory_ratio']:.2f}) | {load(r['load_average_start'])} / "
            f"{load(r['load_average'])} |")
