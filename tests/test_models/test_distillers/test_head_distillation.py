"""Dense-head distillation in the DetectionDistiller: what is recorded, what runs how often,
where gradients go, and what the student's own losses stay."""
import copy
import functools

import pytest
import torch
from mmdet.models.dense_heads import GFLHead
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.registry import init_default_scope

from vkd_mmdet.models.distillers.frozen_teacher import fold_batchnorms
from vkd_mmdet.models.utils import capture_outputs
from vkd_mmdet.testing import save_random_checkpoint, tiny_detector_cfg

GFL, RETINA = 'gfl/gfl_r50_fpn_1x_coco.py', 'retinanet/retinanet_r50_fpn_1x_coco.py'
NUM_CLASSES = 3


def _tiny(config, base_channels=8, convs=3, norm='GN'):
    cfg = tiny_detector_cfg(config, NUM_CLASSES, base_channels=base_channels, neck_channels=16)
    cfg.bbox_head.stacked_convs = convs
    if cfg.bbox_head.type != 'RetinaHead':
        cfg.bbox_head.norm_cfg = dict(type='GN', num_groups=4, requires_grad=True) \
            if norm == 'GN' else dict(type='BN', requires_grad=True)
    return cfg


def _distiller(tmp_path, losses, student=GFL, teacher=GFL):
    init_default_scope('mmdet')
    teacher_cfg = _tiny(teacher, base_channels=12)
    ckpt = save_random_checkpoint(teacher_cfg, str(tmp_path / 'teacher.pth'))
    return MODELS.build(dict(type='DetectionDistiller', student=_tiny(student),
                             teacher=teacher_cfg, teacher_ckpt=ckpt, distill_losses=losses))


def _batch(model, seed=0):
    torch.manual_seed(seed)
    data = demo_mm_inputs(2, [(3, 96, 128), (3, 64, 96)], num_items=[3, 2],
                          num_classes=NUM_CLASSES)
    return model.data_preprocessor(data, True)


LOSSES = dict(crosskd=dict(type='CrossKDLoss', cls_weight=1.0, box_weight=4.0),
              ld=dict(type='LDLoss'))


def test_one_step_records_once_and_keeps_the_students_losses(tmp_path, monkeypatch):
    model = _distiller(tmp_path, LOSSES)
    calls = []
    original = GFLHead.get_targets

    @functools.wraps(original)
    def counting(self, *args, **kwargs):
        calls.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(GFLHead, 'get_targets', counting)
    batch = _batch(model)
    with capture_outputs(model.teacher.bbox_head.cls_convs[0]) as first_conv:
        losses = model(**batch, mode='loss')
    # The teacher's head ran once on its own features (its first tower conv once per level:
    # the cross-head pass starts after conv k = 3); the student assigned once.
    assert len(first_conv) == len(model.teacher.bbox_head.prior_generator.strides)
    assert calls == [model.student.bbox_head]
    assert {'loss_crosskd_cls', 'loss_crosskd_box', 'loss_ld_ld', 'loss_ld_cls',
            'loss_ld_vlr'} <= set(losses)
    assert all(torch.isfinite(torch.stack(value) if isinstance(value, list) else value).all()
               for value in losses.values())

    # The student's own losses are those of the student trained alone.
    alone = MODELS.build(_tiny(GFL))
    alone.load_state_dict(model.student.state_dict())
    batch = alone.data_preprocessor(_batch(model), True)
    own = alone.loss(batch['inputs'], batch['data_samples'])
    for key, value in own.items():
        mine = losses[key]
        for a, b in zip(value if isinstance(value, list) else [value],
                        mine if isinstance(mine, list) else [mine]):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_cross_head_gradients_reach_the_student_tower_only(tmp_path):
    model = _distiller(tmp_path, dict(crosskd=LOSSES['crosskd']))
    losses = model(**_batch(model), mode='loss')
    (losses['loss_crosskd_cls'] + losses['loss_crosskd_box']).backward()
    head = model.student.bbox_head
    for tower in (head.cls_convs, head.reg_convs):
        for module in tower:  # convs 1..3 feed the cut at conv 3
            assert module.conv.weight.grad is not None and module.conv.weight.grad.abs().sum() > 0
    assert model.student.neck.fpn_convs[0].conv.weight.grad.abs().sum() > 0
    # The student's own predictors are not on the cross-head path.
    assert head.gfl_cls.weight.grad is None and head.gfl_reg.weight.grad is None
    assert all(param.grad is None for param in model.teacher.parameters())


def test_ld_with_a_retinanet_student_names_both_heads(tmp_path):
    with pytest.raises(ValueError, match=r'distill_losses\.ld: .*teacher GFLHead, student '
                                         r'RetinaHead'):
        _distiller(tmp_path, dict(ld=dict(type='LDLoss')), student=RETINA)


def test_head_losses_need_one_tower_conv(tmp_path):
    losses = dict(a=dict(type='CrossKDLoss', tower_conv=2),
                  b=dict(type='CrossKDLoss', tower_conv=3))
    model = _distiller(tmp_path, losses)
    with pytest.raises(ValueError, match=r'tower convs \[2, 3\]'):
        model(**_batch(model), mode='loss')


def test_width_given_in_the_config_must_match(tmp_path):
    with pytest.raises(ValueError, match=r'crosskd.in_channels=32 but '
                                         r'student.bbox_head.feat_channels=16'):
        _distiller(tmp_path, dict(crosskd=dict(type='CrossKDLoss', in_channels=32)))


@pytest.mark.parametrize('norm', ['GN', 'BN'])
def test_teacher_fold_keeps_the_head_outputs(norm):
    """fold_batchnorms folds a head's BN into its conv (ConvModule: conv, norm, act) and leaves
    GroupNorm (GFL's, FCOS's) as it is: the teacher's head predicts the same either way."""
    init_default_scope('mmdet')
    teacher = MODELS.build(_tiny(GFL, norm=norm)).eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in teacher.modules():  # BN statistics away from the identity
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.copy_(torch.randn(module.num_features, generator=generator))
                module.running_var.copy_(torch.rand(module.num_features, generator=generator)
                                         + 0.5)
    probe = torch.randn(1, 3, 64, 64, generator=generator)
    folded = fold_batchnorms(copy.deepcopy(teacher), lambda m: m.extract_feat(probe))
    assert folded is not teacher
    kinds = {type(m).__name__ for m in folded.bbox_head.modules()}
    assert ('GroupNorm' in kinds) == (norm == 'GN') and 'BatchNorm2d' not in kinds
    with torch.no_grad():
        want = teacher.bbox_head(teacher.extract_feat(probe))
        got = folded.bbox_head(folded.extract_feat(probe))
    for a, b in zip(sum(want, []), sum(got, [])):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)
