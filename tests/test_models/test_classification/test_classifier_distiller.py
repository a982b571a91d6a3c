import copy

import pytest
import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS

import vkd_mmdet.classification  # noqa: F401 (registers the mmpretrain modules)
from vkd_mmdet.models.distillers.classifier_distiller import renormalize
from vkd_mmdet.testing.tiny_classifiers import (
    IMG,
    NUM_CLASSES,
    batch,
    save_random_checkpoint,
    tiny_deit,
    tiny_resnet,
    tiny_timm_teacher,
)

MIXUP = dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)])
PRE = dict(num_classes=NUM_CLASSES, mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
           to_rgb=True)


def deit_distiller(tmp_path, **kwargs):
    init_default_scope('mmpretrain')
    teacher = tiny_timm_teacher()
    cfg = dict(
        type='ClassifierDistiller',
        student=dict(tiny_deit(), train_cfg=MIXUP),
        teacher=teacher,
        teacher_ckpt=save_random_checkpoint(teacher, tmp_path / 't.pth', timm_keys=True),
        data_preprocessor=PRE,
        feature_losses=dict(vkd=dict(type='VkDClsLoss', in_channels=32, out_channels=368)),
        logit_losses=dict(kd=dict(type='LogitKDLoss')))
    cfg.update(kwargs)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def adamw(model, decay_projector=False):
    params = [p for n, p in model.named_parameters() if 'projector' not in n]
    projector = [p for n, p in model.named_parameters() if 'projector' in n]
    return OptimWrapper(torch.optim.AdamW(
        [dict(params=params),
         dict(params=projector, weight_decay=0.05 if decay_projector else 0.0)],
        lr=1e-3, weight_decay=0.05))


def test_train_step_losses_and_frozen_teacher(tmp_path):
    model = deit_distiller(tmp_path)
    teacher_before = copy.deepcopy(model.teacher.state_dict())
    assert not any(key.startswith('teacher.') for key in model.state_dict())
    optim = adamw(model)
    student_before = model.student.backbone.pos_embed.detach().clone()
    for step in range(2):
        losses = model.train_step(batch(seed=step), optim)
    assert set(losses) == {'loss', 'loss_cls', 'loss_vkd', 'loss_kd'}
    assert all(torch.isfinite(value) for value in losses.values())
    assert not torch.equal(student_before, model.student.backbone.pos_embed)
    assert not model.teacher.training and model.student.training
    for key, value in model.teacher.state_dict().items():
        assert torch.equal(value, teacher_before[key]), key


def test_losses_match_reference(tmp_path):
    """Each term recomputed from the student and teacher modules called by hand."""
    # No batch augments: the student's preprocessing is deterministic.
    model = deit_distiller(tmp_path, student=tiny_deit())
    data = batch()
    losses = model.loss(**data)
    x = model.student.data_preprocessor(copy.deepcopy(data), False)['inputs']
    (pooled, cls_token, dist_token), = model.student.backbone(x)
    teacher = model.teacher.model
    t_map = teacher.forward_features(x)
    t_feat, t_logits = t_map.mean((2, 3)), teacher.forward_head(t_map)
    head = model.student.head.layers
    labels = torch.tensor([i % NUM_CLASSES for i in range(4)])
    ce = torch.nn.functional.cross_entropy(head.head(cls_token), labels)
    torch.testing.assert_close(losses['loss_cls'], ce)
    kd = torch.nn.functional.kl_div(head.head_dist(dist_token).log_softmax(1),
                                    t_logits.softmax(1), reduction='batchmean')
    torch.testing.assert_close(losses['loss_kd'], kd)
    w = model.feature_losses.vkd.projector.weight
    target = torch.nn.functional.layer_norm(t_feat, (368,))
    feat = torch.nn.functional.smooth_l1_loss(pooled @ w.T, target)
    torch.testing.assert_close(losses['loss_vkd'], feat)


@pytest.mark.parametrize('student', ['deit', 'resnet'])
def test_prediction_equals_plain_student(tmp_path, student):
    init_default_scope('mmpretrain')
    student_cfg = tiny_deit() if student == 'deit' else tiny_resnet()
    teacher = tiny_resnet(depth=34)
    model = MODELS.build(dict(
        type='ClassifierDistiller', student=student_cfg, teacher=teacher,
        teacher_ckpt=save_random_checkpoint(teacher, tmp_path / 't.pth'), data_preprocessor=PRE,
        logit_losses=dict(kd=dict(type='LogitKDLoss'))))
    model.init_weights()
    for param in model.student.head.parameters():  # DeiTClsHead starts at zero
        torch.nn.init.normal_(param)
    model.eval()
    plain = MODELS.build(dict(student_cfg, data_preprocessor=copy.deepcopy(PRE))).eval()
    plain.load_state_dict({key[len('student.'):]: value
                           for key, value in model.state_dict().items()
                           if key.startswith('student.')})
    data = batch()
    ours = model.test_step(copy.deepcopy(data))
    theirs = plain.test_step(copy.deepcopy(data))
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a.pred_score, b.pred_score)
        assert a.pred_label == b.pred_label
    # tensor mode takes the raw batch, like the other modes.
    torch.testing.assert_close(model(copy.deepcopy(data)['inputs'], mode='tensor'),
                               plain(plain.data_preprocessor(data)['inputs']))


def test_renormalize_is_exact():
    init_default_scope('mmpretrain')
    student = MODELS.build(dict(type='ClsDataPreprocessor', **PRE))
    teacher = MODELS.build(dict(type='ClsDataPreprocessor', mean=[0.0, 10.0, 20.0],
                                std=[2.0, 3.0, 4.0], to_rgb=False))
    data = batch()
    x_s = student(copy.deepcopy(data))['inputs']
    x_t = teacher(copy.deepcopy(data))['inputs']
    torch.testing.assert_close(renormalize(x_s, student, teacher), x_t)
    assert renormalize(x_s, student, student) is x_s
    # Mixup commutes with the per-channel affine map: the teacher sees the same mixed images.
    mixed = 0.3 * x_s + 0.7 * x_s.flip(0)
    torch.testing.assert_close(renormalize(mixed, student, teacher),
                               0.3 * x_t + 0.7 * x_t.flip(0))


def test_errors(tmp_path):
    model = deit_distiller(tmp_path)
    with pytest.raises(ValueError, match='projector'):
        model.train_step(batch(), adamw(model, decay_projector=True))
    with pytest.raises(ValueError, match='feature_losses'):
        deit_distiller(tmp_path, feature_losses=None, logit_losses=None)
    with pytest.raises(ValueError, match='distillation token'):
        deit_distiller(tmp_path, student=dict(tiny_deit(), backbone=dict(
            type='DistilledVisionTransformer', arch=dict(embed_dims=32, num_layers=1,
                                                         num_heads=2, feedforward_channels=32),
            img_size=IMG, patch_size=16))).loss(**batch())
