"""Orthogonal projectors out of weight decay: the optimizer constructor exempts them alone (and
keeps the config's other rules for them); the distiller's guard refuses any other optimizer that
decays them at its first step; the old hook's name says what to write instead."""
import pytest
import torch
from mmdet.registry import MODELS
from mmengine.optim import build_optim_wrapper
from mmengine.registry import HOOKS, init_default_scope

from vkd_mmdet.models.projectors import OrthogonalProjector
from vkd_mmdet.testing import save_random_checkpoint, tiny_detector_cfg

RETINANET = 'retinanet/retinanet_r50_fpn_1x_coco.py'
ADAMW = dict(type='AdamW', lr=1e-3, weight_decay=0.05)


def _distiller(tmp_path, **losses):
    init_default_scope('mmdet')
    student = tiny_detector_cfg(RETINANET, base_channels=8, neck_channels=16)
    teacher = tiny_detector_cfg(RETINANET, base_channels=8, neck_channels=16)
    return MODELS.build(dict(
        type='DetectionDistiller', student=student, teacher=teacher,
        teacher_ckpt=save_random_checkpoint(teacher, str(tmp_path / 'teacher.pth')),
        distill_losses=losses or dict(vkd=dict(type='VkDLoss'))))


def _settings(model, wrapper):
    """parameter name -> (lr, weight decay) as the optimizer holds them."""
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(p)]: (group['lr'], group['weight_decay'])
            for group in wrapper.optimizer.param_groups for p in group['params']}


def _orthogonal(model):
    return {f'{name}.{p}' for name, m in model.named_modules()
            if isinstance(m, OrthogonalProjector) for p, _ in m.named_parameters()}


def test_the_constructor_exempts_orthogonal_projectors_alone_and_keeps_other_rules(tmp_path):
    model = _distiller(tmp_path, vkd=dict(type='VkDLoss'), srd=dict(type='SRDLoss'))
    settings = _settings(model, build_optim_wrapper(model, dict(
        constructor='DistillOptimWrapperConstructor', optimizer=ADAMW,
        paramwise_cfg=dict(bias_decay_mult=0.5,
                           custom_keys={'projector.raw_weight': dict(lr_mult=10.)}))))
    orthogonal = _orthogonal(model)
    assert len(orthogonal) == 5  # one projector per RetinaNet level
    for name, (lr, decay) in settings.items():
        if name in orthogonal:  # the rule, with the config's own lr_mult kept
            assert (lr, decay) == (pytest.approx(1e-2), 0.0), name
        elif name.endswith('bias'):  # the config's other rules apply as written
            assert (lr, decay) == (pytest.approx(1e-3), pytest.approx(0.025)), name
        else:  # SRD's free map and the student: the optimizer's decay
            assert (lr, decay) == (pytest.approx(1e-3), pytest.approx(0.05)), name
    # the same as mmengine's default constructor for everything else
    default = _settings(model, build_optim_wrapper(model, dict(
        optimizer=ADAMW, paramwise_cfg=dict(bias_decay_mult=0.5))))
    assert {n: s for n, s in settings.items() if n not in orthogonal} == \
        {n: s for n, s in default.items() if n not in orthogonal}


def test_the_guard_refuses_a_decaying_optimizer_at_its_first_step(tmp_path):
    model = _distiller(tmp_path)
    decayed = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    with pytest.raises(ValueError, match=r"weight_decay=0.05.*constructor="
                                         r"'DistillOptimWrapperConstructor'"):
        decayed.step()
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())  # no step ran
    # an optimizer with the rule passes, and steps
    good = build_optim_wrapper(model, dict(constructor='DistillOptimWrapperConstructor',
                                           optimizer=ADAMW))
    good.optimizer.step()
    assert not all(torch.equal(p, before[n]) for n, p in model.named_parameters())
    # unrelated optimizers are left alone
    other = torch.nn.Linear(2, 2)
    other.weight.grad = torch.ones_like(other.weight)
    torch.optim.AdamW([other.weight], weight_decay=0.1).step()


def test_the_removed_hook_says_what_to_write():
    with pytest.raises(ValueError, match=r"ProjectorDecayCheckHook was removed.*constructor="):
        HOOKS.build(dict(type='ProjectorDecayCheckHook'))
