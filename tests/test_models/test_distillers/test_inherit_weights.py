"""DetectionDistiller(inherit=...): the student's neck and head start from the teacher checkpoint's
(unfolded) weights after init_weights, all or nothing; a resume loads over them."""
import copy
from types import SimpleNamespace

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

import vkd_mmdet  # noqa: F401
from vkd_mmdet.models.distillers.inherit_weights import inherit_teacher_weights
from vkd_mmdet.testing import tiny_detector_cfg

RETINANET = 'retinanet/retinanet_r50_fpn_1x_coco.py'
FASTER_RCNN = 'faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'


@pytest.fixture(autouse=True)
def _mmdet_scope():
    init_default_scope('mmdet')


def _detector(config, base_channels=8):
    cfg = tiny_detector_cfg(config, base_channels=base_channels, neck_channels=16)
    # BatchNorm in the neck: the distiller folds it into the teacher's convolutions, which the
    # student (keeping its BatchNorms) must not inherit.
    cfg.neck.norm_cfg = dict(type='BN', requires_grad=True)
    return cfg


def _teacher_checkpoint(cfg, path):
    """A random teacher whose BatchNorms have non-trivial statistics (folding changes it)."""
    torch.manual_seed(1)
    model = MODELS.build(copy.deepcopy(cfg))
    state = model.state_dict()
    for key, value in state.items():
        if value.is_floating_point():
            value.copy_(torch.rand_like(value) + 0.5 if 'running_var' in key
                        else torch.randn_like(value) * 0.1)
    torch.save({'state_dict': state, 'meta': {}}, path)
    return str(path), state


def _distiller(student, teacher, ckpt, inherit, **kwargs):
    torch.manual_seed(0)
    return MODELS.build(dict(
        type='DetectionDistiller', student=student, teacher=teacher, teacher_ckpt=ckpt,
        inherit=inherit, distill_losses=dict(
            mgd=dict(type='MGDLoss', in_channels=16, out_channels=16)), **kwargs))


@pytest.mark.parametrize('config, inherit', [
    (RETINANET, ('neck', 'bbox_head')),
    (FASTER_RCNN, ('neck', 'rpn_head', 'roi_head')),
])
def test_student_starts_from_the_unfolded_teacher_after_init_weights(tmp_path, config, inherit):
    student, teacher = _detector(config), _detector(config)
    ckpt, state = _teacher_checkpoint(teacher, tmp_path / 'teacher.pth')
    model = _distiller(student, teacher, ckpt, inherit)
    model.init_weights()
    after = model.student.state_dict()
    copied = [key for key in after if key.split('.')[0] in inherit]
    assert copied and all(torch.equal(after[key], state[key]) for key in copied)
    # nothing else: the backbone keeps the student's own init (that of a run without inherit)
    alone = _distiller(student, teacher, ckpt, ())
    alone.init_weights()
    own = alone.student.state_dict()
    assert all(torch.equal(after[key], own[key]) for key in after if key not in copied)
    assert any(not torch.equal(after[key], state[key]) for key in after if key not in copied)
    # the distiller's teacher is folded: its neck convolutions are not the checkpoint's
    folded = model.teacher.neck.lateral_convs[0].conv.weight
    assert not torch.allclose(folded, state['neck.lateral_convs.0.conv.weight'])
    # a second init_weights (mmengine warns) copies nothing again
    with torch.no_grad():
        model.student.neck.lateral_convs[0].conv.weight.zero_()
    model.init_weights()
    assert model.student.neck.lateral_convs[0].conv.weight.abs().sum() == 0


def test_copy_counts_every_tensor(tmp_path):
    cfg = _detector(RETINANET)
    ckpt, state = _teacher_checkpoint(cfg, tmp_path / 'teacher.pth')
    student = MODELS.build(copy.deepcopy(cfg))
    count = inherit_teacher_weights(student, ('neck', ), ckpt)
    neck = [key for key in state if key.startswith('neck.')]
    assert count == len(neck) and any('running_mean' in key for key in neck)


def test_mismatching_teacher_fails_with_the_key_names(tmp_path):
    student, teacher = _detector(RETINANET), _detector(RETINANET, base_channels=12)
    ckpt, state = _teacher_checkpoint(teacher, tmp_path / 'teacher.pth')
    model = _distiller(student, teacher, ckpt, ('neck', 'bbox_head'))
    with pytest.raises(ValueError) as error:
        model.init_weights()
    message = str(error.value)
    assert message.startswith("inherit=('neck', 'bbox_head'): teacher_ckpt")
    assert 'neck.lateral_convs.0.conv.weight (16, 24, 1, 1) in the checkpoint, ' \
           '(16, 16, 1, 1) in the student; neck.lateral_convs.1.conv.weight' in message
    # all or nothing: the head (whose shapes match) was not copied either
    after = model.student.state_dict()
    assert not any(torch.equal(after[key], state[key]) for key in after
                   if key.startswith('bbox_head.'))


def test_checkpoint_without_the_module_fails(tmp_path):
    cfg = _detector(RETINANET)
    ckpt, state = _teacher_checkpoint(cfg, tmp_path / 'teacher.pth')
    torch.save({'state_dict': {k: v for k, v in state.items() if not k.startswith('bbox_head.')}},
               tmp_path / 'headless.pth')
    student = MODELS.build(copy.deepcopy(cfg))
    with pytest.raises(ValueError, match=r'bbox_head\.\S+ missing from the checkpoint'):
        inherit_teacher_weights(student, ('bbox_head', ), str(tmp_path / 'headless.pth'))


@pytest.mark.parametrize('inherit, error, match', [
    (('nek', ), ValueError, r"the student \(RetinaNet\) has no module 'nek' with weights; it "
                            r"has \['backbone', 'neck', 'bbox_head'\]"),
    (True, TypeError, 'expected module names'),
    (('neck', 'neck'), ValueError, 'names a module twice'),
])
def test_bad_inherit_is_refused_at_build(tmp_path, inherit, error, match):
    cfg = _detector(RETINANET)
    ckpt, _ = _teacher_checkpoint(cfg, tmp_path / 'teacher.pth')
    with pytest.raises(error, match=match):
        _distiller(cfg, cfg, ckpt, inherit)


def test_a_resumed_checkpoint_loads_over_the_inherited_weights(tmp_path):
    cfg = _detector(RETINANET)
    ckpt, state = _teacher_checkpoint(cfg, tmp_path / 'teacher.pth')
    trained = _distiller(cfg, cfg, ckpt, ('neck', 'bbox_head'))
    with torch.no_grad():
        for param in trained.student.parameters():
            param.add_(1.0)
    torch.save({'state_dict': trained.state_dict(), 'meta': {}}, tmp_path / 'iter_2.pth')

    # What Runner.train does on --resume: init_weights (inherits), then load the checkpoint.
    resumed = _distiller(cfg, cfg, ckpt, ('neck', 'bbox_head'))
    resumed.init_weights()
    assert torch.equal(resumed.student.neck.fpn_convs[0].conv.weight,
                       state['neck.fpn_convs.0.conv.weight'])
    runner = SimpleNamespace(model=resumed, call_hook=lambda *args, **kwargs: None,
                             logger=MMLogger.get_current_instance())
    Runner.load_checkpoint(runner, str(tmp_path / 'iter_2.pth'))
    for key, value in trained.student.state_dict().items():
        assert torch.equal(resumed.student.state_dict()[key], value), key
