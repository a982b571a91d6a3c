"""Where a distillation train step goes: its phases timed from outside the distiller.

:func:`step_breakdown` runs a few ``DetectionDistiller.train_step`` calls with timers wrapped
around the distiller's parts (instance attributes and the projector's ``weight`` property,
patched for the duration only, and hooks on the step's own autograd nodes): nothing in the
distiller changes and normal training pays nothing. The phases (exclusive wall times, they add
up to the step; see :class:`~vkd_mmdet.utils.phase_timer.PhaseTimer`):

- ``preprocess``: the distiller's, the teacher's and the student's data preprocessors;
- ``teacher_forward``: the teacher's own forward (backbone + neck; its RoI head for RoI losses)
  inside :meth:`teacher_forward`, at ``teacher_precision``;
- ``teacher_casts``: the rest of :meth:`teacher_forward`: the input's and weights' memory
  format, autocast set-up and the copy of the outputs to contiguous float32;
- ``student_forward``: the student's ``loss`` (its forward and own losses, neck capture);
- ``projector_maps``: materialising every orthogonal projector's weight (forward);
- ``distill_losses``: the rest of ``distill_loss`` (padding masks, float32 casts, projections,
  normalisation, the losses);
- ``projector_maps_backward`` / ``distill_losses_backward``: the autograd nodes of the weight
  maps, and the other nodes of ``distill_loss``'s graph (back to the student's neck outputs);
- ``head_losses`` / ``head_losses_backward``: the dense-head losses (LD, CrossKD: its
  cross-head pass through the teacher's head included) and their graph's nodes back to the
  student head's outputs (for them, ``teacher_forward`` includes the teacher's head);
- ``backward``: the rest of the backward pass (the student's own graph);
- ``optimizer_step``: ``step`` and ``zero_grad`` of the optimizer wrapper;
- ``other``: what ``train_step`` spends outside all of them (loss parsing, checks, logging;
  also the forward of RoI distillation losses, whose backward counts in ``backward``).
"""
import contextlib
import statistics
import time
from typing import Callable, Dict, Iterator, List, Sequence
from unittest import mock

import torch.nn as nn
from mmengine.optim import OptimWrapper

from ..models.distillers.head_distillation import HeadDistillationStep
from ..models.projectors import OrthogonalProjector
from ..utils.phase_timer import PhaseTimer, graph_nodes

PHASES = ('preprocess', 'teacher_forward', 'teacher_casts', 'student_forward', 'projector_maps',
          'distill_losses', 'projector_maps_backward', 'distill_losses_backward', 'head_losses',
          'head_losses_backward', 'backward', 'optimizer_step', 'other')
PHASE_LABELS = dict(
    preprocess='data preprocessors (distiller, teacher, student)',
    teacher_forward='teacher forward',
    teacher_casts='teacher: layout, autocast, float32 copy of its features',
    student_forward='student forward + its own losses',
    projector_maps='projector weight maps (forward)',
    distill_losses='padding masks, projection, normalisation + losses (forward)',
    projector_maps_backward='projector weight maps (backward)',
    distill_losses_backward='projection, normalisation + losses (backward)',
    head_losses='dense-head losses, cross-head pass included (forward)',
    head_losses_backward='dense-head losses (backward)',
    backward='student backward',
    optimizer_step='optimizer step + zero_grad',
    other='other (loss parsing, checks)')


@contextlib.contextmanager
def instrument_distill_step(model: nn.Module, optim_wrapper: OptimWrapper,
                            timer: PhaseTimer) -> Iterator[None]:
    """Within the block, every ``model.train_step(data, optim_wrapper)`` is timed by phase.

    Wraps (and restores on exit) the distiller's ``train_step``, ``teacher_forward``,
    ``distill_loss``, the three data preprocessors' ``forward``, the student's ``loss``,
    ``HeadDistillationStep.losses``, ``OrthogonalProjector.weight`` and the wrapper's
    ``backward`` / ``step`` / ``zero_grad``; the backward nodes of ``distill_loss``'s and of the
    head losses' graphs get timing hooks on each step.
    """
    weights: List = []
    recording = [False]

    with contextlib.ExitStack() as stack:
        def patch(obj: object, name: str, new: object) -> None:
            stack.enter_context(mock.patch.object(obj, name, new))

        def wrap(obj: object, name: str, phase: str) -> None:
            patch(obj, name, timer.wrap(getattr(obj, name), phase))

        wrap(model, 'train_step', 'other')
        for preprocessor in (model.data_preprocessor, model.teacher.data_preprocessor,
                             model.student.data_preprocessor):
            wrap(preprocessor, 'forward', 'preprocess')
        teacher_forward = model.teacher_forward

        def timed_teacher_forward(forward: Callable, inputs):
            return teacher_forward(timer.wrap(forward, 'teacher_forward'), inputs)

        patch(model, 'teacher_forward', timer.wrap(timed_teacher_forward, 'teacher_casts'))
        wrap(model.student, 'loss', 'student_forward')
        weight_map = OrthogonalProjector.weight.fget

        def timed_weight(projector: OrthogonalProjector):
            with timer.phase('projector_maps'):
                weight = weight_map(projector)
            if recording[0]:
                weights.append(weight)
            return weight

        patch(OrthogonalProjector, 'weight',
              property(timed_weight, doc=OrthogonalProjector.weight.__doc__))
        distill_loss = model.distill_loss

        def timed_distill_loss(student_feats, teacher_feats, *args, **kwargs):
            recording[0] = True
            try:
                with timer.phase('distill_losses'):
                    losses = distill_loss(student_feats, teacher_feats, *args, **kwargs)
            finally:
                recording[0] = False
            maps = graph_nodes(weights)
            weights.clear()
            timer.time_backward(maps, 'projector_maps_backward')
            # Back to the student's neck outputs, and not into the maps' nodes.
            inputs = [feat.grad_fn for feat in student_feats if feat.grad_fn is not None]
            timer.time_backward(graph_nodes(losses.values(), stop_at=inputs + maps),
                                'distill_losses_backward')
            return losses

        patch(model, 'distill_loss', timed_distill_loss)
        head_losses = HeadDistillationStep.losses

        def timed_head_losses(step: HeadDistillationStep, *args, **kwargs):
            with timer.phase('head_losses'):
                losses = head_losses(step, *args, **kwargs)
            outputs = step.student_record['outputs']
            student = [*outputs.cls_scores, *outputs.bbox_preds,
                       *(feat for feats in outputs.towers.values() for feat in feats)]
            timer.time_backward(graph_nodes(losses.values(), stop_at=[
                t.grad_fn for t in student if t.grad_fn is not None]), 'head_losses_backward')
            return losses

        patch(HeadDistillationStep, 'losses', timed_head_losses)
        wrap(optim_wrapper, 'backward', 'backward')
        wrap(optim_wrapper, 'step', 'optimizer_step')
        wrap(optim_wrapper, 'zero_grad', 'optimizer_step')
        yield


def step_breakdown(model: nn.Module, optim_wrapper: OptimWrapper, data: dict, iters: int = 3,
                   clock: Callable[[], float] = time.perf_counter) -> Dict[str, object]:
    """Run ``iters`` distillation train steps on ``data`` and time each phase of :data:`PHASES`.

    Args:
        model (nn.Module): a ``DetectionDistiller``.
        optim_wrapper (OptimWrapper): its optimizer wrapper.
        data (dict): one batch, as the dataloader gives it.
        iters (int): timed steps. Defaults to 3.
        clock (Callable): seconds, monotonic. Defaults to ``time.perf_counter``.

    Returns:
        dict: ``times_s`` (phase -> its time in each step), ``mean_s`` (phase -> mean),
        ``step_s`` (the mean step: the sum of the means), ``share`` (phase -> mean / step) and
        ``projector_maps_per_step``.
    """
    if iters < 1:
        raise ValueError(f'breakdown iters={iters}: time at least one step')
    device = next(model.parameters()).device
    timer = PhaseTimer(device, clock)
    times: Dict[str, List[float]] = {phase: [] for phase in PHASES}
    maps: List[int] = []
    with instrument_distill_step(model, optim_wrapper, timer):
        for _ in range(iters):
            timer.reset()
            model.train_step(data, optim_wrapper)
            for phase in PHASES:
                times[phase].append(timer.totals.get(phase, 0.0))
            maps.append(timer.calls.get('projector_maps', 0))
    mean = {phase: statistics.fmean(values) for phase, values in times.items()}
    step = sum(mean.values())
    return dict(iters=iters, times_s=times, mean_s=mean, step_s=step,
                share={phase: value / step for phase, value in mean.items()},
                projector_maps_per_step=max(maps))


def breakdown_table(results: Sequence[dict]) -> str:
    """A markdown table of the ``breakdown`` of each :func:`benchmark_distiller` result, one
    column per result (e.g. the fp32 and bf16 teachers): mean ms and share of the step (a row
    per phase some result went through); last, (c) as the timed rounds measured it, without
    timers (the gap is what the timers cost)."""
    heads = [f"{r['config'].rsplit('/', 1)[-1]} {r['teacher_precision']}" for r in results]
    lines = ['| phase | ' + ' | '.join(f'{head} ms (share)' for head in heads) + ' |',
             '|---|' + '---:|' * len(results)]
    # Phases none of the results went through (the head losses of a feature distiller) are
    # left out; results saved before a phase existed lack it.
    shown = [phase for phase in PHASES
             if any(r['breakdown']['mean_s'].get(phase, 0.0) for r in results)]
    for phase in shown + ['step']:
        cells = []
        for r in results:
            breakdown = r['breakdown']
            value = breakdown['step_s'] if phase == 'step' else \
                breakdown['mean_s'].get(phase, 0.0)
            share = 1.0 if phase == 'step' else breakdown['share'].get(phase, 0.0)
            cells.append(f'{1000 * value:.0f} ({100 * share:.1f} %)')
        label = 'step (sum)' if phase == 'step' else PHASE_LABELS[phase]
        lines.append(f'| {label} | ' + ' | '.join(cells) + ' |')
    untimed = [f"{1000 * r['median_s']['distill']:.0f}" if 'median_s' in r else '' for r in results]
    lines.append('| (c) without timers (median of the rounds) | ' + ' | '.join(untimed) + ' |')
    return '\n'.join(lines)
