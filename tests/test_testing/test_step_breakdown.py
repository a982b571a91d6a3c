"""vkd_mmdet.testing.step_breakdown: each phase of a real distillation step gets exactly the time
spent in it. Made-up costs are planted in every part of a tiny distiller on a fake clock (real
computation takes no fake time), so each phase's expected total is known exactly."""
import copy
from unittest import mock

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope

from vkd_mmdet.models.distillers import frozen_teacher
from vkd_mmdet.models.distillers.head_distillation import HeadDistillationStep
from vkd_mmdet.models.losses import VkDLoss
from vkd_mmdet.models.projectors import OrthogonalProjector
from vkd_mmdet.testing import save_random_checkpoint, tiny_detector_cfg
from vkd_mmdet.testing.step_breakdown import PHASES, breakdown_table, step_breakdown

RETINANET = 'retinanet/retinanet_r50_fpn_1x_coco.py'


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Delay(torch.autograd.Function):
    """Identity costing ``forward_s`` fake seconds forward and ``backward_s`` backward."""

    @staticmethod
    def forward(ctx, x, clock, forward_s, backward_s):
        clock.now += forward_s
        ctx.clock, ctx.backward_s = clock, backward_s
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        ctx.clock.now += ctx.backward_s
        return grad, None, None, None


def delayed(fn, clock, seconds):
    def run(*args, **kwargs):
        clock.now += seconds
        return fn(*args, **kwargs)
    return run


@pytest.fixture
def distiller(tmp_path):
    init_default_scope('mmdet')
    student = tiny_detector_cfg(RETINANET, base_channels=8, neck_channels=16)
    teacher = tiny_detector_cfg(RETINANET, base_channels=8, neck_channels=32)
    ckpt = save_random_checkpoint(teacher, str(tmp_path / 'teacher.pth'), seed=1)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convolutions: thread hand-offs cost more than the maths
    torch.manual_seed(0)
    yield MODELS.build(dict(
        type='DetectionDistiller', student=student, teacher=teacher, teacher_ckpt=ckpt,
        distill_losses=dict(vkd=dict(type='VkDLoss')))).train()
    torch.set_num_threads(threads)


def _sgd(model):
    return OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))


def _data():
    torch.manual_seed(0)
    return demo_mm_inputs(2, [(3, 64, 96)] * 2, num_items=[3, 2], num_classes=3)


def test_every_phase_gets_exactly_its_planted_cost(distiller):
    model, optim_wrapper = distiller, _sgd(distiller)
    clock = Clock()
    levels = 5  # RetinaNet P3-P7: one VkD module (one projector) per level
    weight, vkd_forward = OrthogonalProjector.weight.fget, VkDLoss.forward
    with mock.patch.object(model.student.data_preprocessor, 'forward',
                           delayed(model.student.data_preprocessor.forward, clock, 0.5)), \
            mock.patch.object(model.teacher, 'extract_feat',
                              delayed(model.teacher.extract_feat, clock, 1.0)), \
            mock.patch.object(frozen_teacher, '_for_losses',
                              delayed(frozen_teacher._for_losses, clock, 2.0)), \
            mock.patch.object(OrthogonalProjector, 'weight', property(
                lambda self: Delay.apply(weight(self), clock, 8.0, 16.0))), \
            mock.patch.object(VkDLoss, 'forward', lambda self, *args, **kwargs: Delay.apply(
                vkd_forward(self, *args, **kwargs), clock, 32.0, 128.0)), \
            mock.patch.object(optim_wrapper.optimizer, 'step',
                              delayed(optim_wrapper.optimizer.step, clock, 256.0)), \
            mock.patch.object(model, 'parse_losses', delayed(model.parse_losses, clock, 512.0)):
        # The student's neck: each of its outputs 4 s forward, 64 s backward (the student's
        # own graph, which the distillation losses' backward stops at).
        handle = model.student.neck.register_forward_hook(
            lambda module, args, outputs: tuple(
                Delay.apply(out, clock, 4.0, 64.0) for out in outputs))
        try:
            result = step_breakdown(model, optim_wrapper, _data(), iters=2, clock=clock)
        finally:
            handle.remove()
    expected = dict(preprocess=0.5, teacher_forward=1.0, teacher_casts=2.0,
                    student_forward=4.0 * levels,
                    projector_maps=8.0 * levels, distill_losses=32.0 * levels,
                    projector_maps_backward=16.0 * levels,
                    distill_losses_backward=128.0 * levels, head_losses=0.0,
                    head_losses_backward=0.0, backward=64.0 * levels,
                    optimizer_step=256.0, other=512.0)
    assert set(expected) == set(PHASES)
    # Exact but for the rounding of differences of a fake clock in the thousands.
    assert result['times_s'] == {phase: pytest.approx([value] * 2, rel=1e-12)
                                 for phase, value in expected.items()}
    assert result['step_s'] == pytest.approx(sum(expected.values()), rel=1e-12)
    assert clock.now == 2 * sum(expected.values())
    assert result['share']['other'] == 512.0 / result['step_s']
    assert result['projector_maps_per_step'] == levels


def test_the_breakdown_changes_nothing_and_leaves_nothing_behind(distiller):
    plain, timed = distiller, copy.deepcopy(distiller)  # the copy shares the frozen teacher
    plain_optim, timed_optim = _sgd(plain), _sgd(timed)
    property_before, head_losses_before = OrthogonalProjector.weight, HeadDistillationStep.losses
    plain.train_step(_data(), plain_optim)
    step_breakdown(timed, timed_optim, _data(), iters=1)
    # The timed step computed the same gradients: the same SGD update, bit for bit.
    timed_params = dict(timed.named_parameters())
    for name, param in plain.named_parameters():
        assert torch.equal(param, timed_params[name]), name
    # Every patch is undone: the class property, the instance attributes, the hooks.
    assert OrthogonalProjector.weight is property_before
    assert HeadDistillationStep.losses is head_losses_before
    for obj, names in ((timed, ('train_step', 'teacher_forward', 'distill_loss')),
                       (timed.student, ('loss',)),
                       (timed.student.data_preprocessor, ('forward',)),
                       (timed_optim, ('backward', 'step', 'zero_grad'))):
        assert not set(names) & set(vars(obj)), obj


def test_breakdown_table_has_a_column_per_result_and_every_phase():
    breakdown = dict(mean_s={phase: 0.001 * (i + 1) for i, phase in enumerate(PHASES)})
    breakdown['step_s'] = sum(breakdown['mean_s'].values())
    breakdown['share'] = {p: v / breakdown['step_s'] for p, v in breakdown['mean_s'].items()}
    results = [dict(config='configs/vkd/x.py', teacher_precision=p, breakdown=breakdown,
                    median_s=dict(distill=distill)) for p, distill in (('fp32', 0.06),
                                                                        ('bf16', 0.0504))]
    lines = breakdown_table(copy.deepcopy(results)).splitlines()
    assert lines[0] == '| phase | x.py fp32 ms (share) | x.py bf16 ms (share) |'
    assert len(lines) == 2 + len(PHASES) + 2
    assert lines[2] == ('| data preprocessors (distiller, teacher, student) | 1 (1.1 %) | '
                        '1 (1.1 %) |')
    assert lines[-2] == '| step (sum) | 91 (100.0 %) | 91 (100.0 %) |'
    assert lines[-1] == '| (c) without timers (median of the rounds) | 60 | 50 |'


def test_breakdown_table_leaves_out_phases_no_result_went_through():
    # A feature distiller's breakdown (no head losses), and one saved before the head phases
    # existed: neither gets those rows, and neither is an error.
    mean = {phase: 0.0 if phase.startswith('head') else 0.001 for phase in PHASES}
    old = {phase: value for phase, value in mean.items() if not phase.startswith('head')}
    results = [dict(config='x.py', teacher_precision='fp32', median_s=dict(distill=0.01),
                    breakdown=dict(mean_s=m, step_s=sum(m.values()),
                                   share={p: v / sum(m.values()) for p, v in m.items()}))
               for m in (mean, old)]
    lines = breakdown_table(results).splitlines()
    assert len(lines) == 2 + len(old) + 2
    assert not any('dense-head' in line for line in lines)
