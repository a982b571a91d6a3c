"""ProjectorDecayCheckHook on a single process (2 gloo ranks: tests/test_tools/test_launch.py)."""
from types import SimpleNamespace

import pytest
from mmdet.registry import MODELS
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

from vkd_mmdet.engine.hooks import ProjectorDecayCheckHook
from vkd_mmdet.testing import save_random_checkpoint, tiny_detector_cfg

RETINANET = 'retinanet/retinanet_r50_fpn_1x_coco.py'
ADAMW = dict(type='AdamW', lr=1e-3, weight_decay=0.05)


def _distiller(tmp_path):
    init_default_scope('mmdet')
    student = tiny_detector_cfg(RETINANET, base_channels=8, neck_channels=16)
    teacher = tiny_detector_cfg(RETINANET, base_channels=8, neck_channels=16)
    return MODELS.build(dict(
        type='DetectionDistiller', student=student, teacher=teacher,
        teacher_ckpt=save_random_checkpoint(teacher, str(tmp_path / 'teacher.pth')),
        distill_losses=dict(vkd=dict(type='VkDLoss', in_channels=16, out_channels=16))))


def test_refuses_a_decayed_projector_and_accepts_the_no_decay_rule(tmp_path):
    model = _distiller(tmp_path)
    decayed = build_optim_wrapper(model, dict(optimizer=ADAMW))
    with pytest.raises(ValueError, match=r"custom_keys=\{'projector.raw_weight'"):
        ProjectorDecayCheckHook().before_train(SimpleNamespace(model=model,
                                                               optim_wrapper=decayed))
    rule = build_optim_wrapper(model, dict(
        optimizer=ADAMW,
        paramwise_cfg=dict(custom_keys={'projector.raw_weight': dict(decay_mult=0.)})))
    ProjectorDecayCheckHook().before_train(SimpleNamespace(model=model, optim_wrapper=rule))
