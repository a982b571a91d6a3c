"""CrossKDLoss against plain torch written from the paper (float64, values and gradients): the
student's tower feature standardised, re-coloured with the teacher's statistics, run through the
rest of the teacher's head (written out by hand here), matched to the teacher's predictions."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmengine.registry import init_default_scope

from vkd_mmdet.models.losses import CrossKDLoss
from vkd_mmdet.models.utils import HeadOutputs, capture_outputs
from vkd_mmdet.models.utils.dense_head_adapters import TeacherDenseHead, tower_preactivation

NUM_CLASSES, STRIDES, SIZES, EPS = 3, (8, 16), (6, 3), 1e-5
GN = dict(type='GN', num_groups=4, requires_grad=True)


def _head(kind, convs=3, width=8):
    init_default_scope('mmdet')
    common = dict(num_classes=NUM_CLASSES, in_channels=8, feat_channels=width,
                  stacked_convs=convs)
    if kind == 'gfl':
        cfg = dict(type='GFLHead', reg_max=4, norm_cfg=GN, anchor_generator=dict(
            type='AnchorGenerator', ratios=[1.0], octave_base_scale=2, scales_per_octave=1,
            strides=list(STRIDES)), **common)
    elif kind == 'retina':
        cfg = dict(type='RetinaHead', anchor_generator=dict(
            type='AnchorGenerator', octave_base_scale=2, scales_per_octave=1,
            ratios=[0.5, 1.0, 2.0], strides=list(STRIDES)), **common)
    else:
        cfg = dict(type='FCOSHead', strides=list(STRIDES), norm_cfg=GN,
                   **common)
    head = MODELS.build(cfg).double().eval().requires_grad_(False)
    generator = torch.Generator().manual_seed(0)
    for param in head.parameters():  # non-trivial GN affines and biases too
        param.copy_(0.3 * torch.randn(param.shape, generator=generator, dtype=param.dtype))
    if kind == 'gfl':  # sharper edge distributions: a KL well above float32 rounding
        for scale in head.scales:
            scale.scale.fill_(20.0)
    return head


def _teacher_outputs(head, conv, seed=1):
    generator = torch.Generator().manual_seed(seed)
    feats = [torch.randn(2, 8, s, s, generator=generator, dtype=torch.float64) for s in SIZES]
    layers = {t: tower_preactivation(head, t, conv, 'test') for t in ('cls', 'reg')}
    with capture_outputs(layers['cls']) as cls_t, capture_outputs(layers['reg']) as reg_t:
        out = head(feats)
    return HeadOutputs(list(out[0]), list(out[1]), dict(cls=cls_t, reg=reg_t))


def _student_towers(width, seed=2):
    generator = torch.Generator().manual_seed(seed)
    return {tower: [(1.5 * torch.randn(2, width, s, s, generator=generator, dtype=torch.float64)
                     + 0.7).requires_grad_() for s in SIZES] for tower in ('cls', 'reg')}


def _recolour(student, teacher):
    mean_s = student.mean((0, 2, 3), keepdim=True)
    var_s = (student - mean_s).square().mean((0, 2, 3), keepdim=True)
    mean_t = teacher.mean((0, 2, 3), keepdim=True)
    var_t = (teacher - mean_t).square().mean((0, 2, 3), keepdim=True)
    return (student - mean_s) / (var_s + EPS).sqrt() * (var_t + EPS).sqrt() + mean_t


def _conv_module(module, x):
    y = F.conv2d(x, module.conv.weight, module.conv.bias, padding=1)
    if module.with_norm:
        y = F.group_norm(y, module.norm.num_groups, module.norm.weight, module.norm.bias,
                         module.norm.eps)
    return F.relu(y)


def _tail_by_hand(head, kind, cls_feat, reg_feat, conv, level):
    """Activation of conv k, the later convs, the predictors: each head's forward written out."""
    cls_feat, reg_feat = F.relu(cls_feat), F.relu(reg_feat)
    for module in head.cls_convs[conv:]:
        cls_feat = _conv_module(module, cls_feat)
    for module in head.reg_convs[conv:]:
        reg_feat = _conv_module(module, reg_feat)
    if kind == 'gfl':
        return (F.conv2d(cls_feat, head.gfl_cls.weight, head.gfl_cls.bias, padding=1),
                (F.conv2d(reg_feat, head.gfl_reg.weight, head.gfl_reg.bias, padding=1)
                 * head.scales[level].scale).float())  # mmdet's heads cast to float32 here
    if kind == 'retina':
        return (F.conv2d(cls_feat, head.retina_cls.weight, head.retina_cls.bias, padding=1),
                F.conv2d(reg_feat, head.retina_reg.weight, head.retina_reg.bias, padding=1))
    # FCOS: distances exp(scale * conv)
    box = F.conv2d(reg_feat, head.conv_reg.weight, head.conv_reg.bias, padding=1)
    return (F.conv2d(cls_feat, head.conv_cls.weight, head.conv_cls.bias, padding=1),
            (box * head.scales[level].scale).float().exp())


def _flat(maps, channels):
    return torch.cat([torch.cat([m[n].reshape(-1, channels, *m.shape[2:]).permute(2, 3, 0, 1)
                                 .reshape(-1, channels) for m in maps]) for n in range(2)])


def _giou(a, b):
    lt, rb = torch.max(a[:, :2], b[:, :2]), torch.min(a[:, 2:], b[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(1)
    area = lambda x: (x[:, 2:] - x[:, :2]).prod(1)  # noqa: E731
    union = area(a) + area(b) - inter
    enclose = (torch.max(a[:, 2:], b[:, 2:]) - torch.min(a[:, :2], b[:, :2])).prod(1)
    return inter / union - (enclose - union) / enclose


def _iou(a, b):
    lt, rb = torch.max(a[:, :2], b[:, :2]), torch.min(a[:, 2:], b[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(1)
    return inter / ((a[:, 2:] - a[:, :2]).prod(1) + (b[:, 2:] - b[:, :2]).prod(1) - inter)


def _decode(kind, priors, pred):
    if kind == 'retina':  # deltas, means 0, stds 1; log-size changes clamped to log(1000 / 16)
        centre, size = (priors[:, :2] + priors[:, 2:]) / 2, priors[:, 2:] - priors[:, :2]
        log_scale = pred[:, 2:].clamp(-math.log(1000 / 16), math.log(1000 / 16))
        centre, size = centre + pred[:, :2] * size, size * log_scale.exp()
        return torch.cat([centre - size / 2, centre + size / 2], 1)
    return torch.cat([priors - pred[:, :2], priors + pred[:, 2:]], 1)  # FCOS distances


def _reference(head, kind, student_towers, teacher, conv, projector, cls_w, box_w):
    cross_cls, cross_box = [], []
    for level in range(len(SIZES)):
        feats = [_recolour(projector(student_towers[t][level]), teacher.towers[t][level])
                 for t in ('cls', 'reg')]
        c, b = _tail_by_hand(head, kind, *feats, conv, level)
        cross_cls.append(c)
        cross_box.append(b)
    p_cross = _flat(cross_cls, NUM_CLASSES)
    target = torch.sigmoid(_flat(teacher.cls_scores, NUM_CLASSES))
    sigma = torch.sigmoid(p_cross)
    bce = -(target * F.logsigmoid(p_cross) + (1 - target) * F.logsigmoid(-p_cross))
    weight = target.max(1).values
    normaliser = weight.sum().clamp(min=1)
    cls = (bce * (sigma - target).abs()).sum() / normaliser
    if kind == 'gfl':
        bins = head.reg_max + 1
        s = torch.log_softmax(_flat(cross_box, 4 * bins).reshape(-1, bins), 1)
        q = torch.softmax(_flat(teacher.bbox_preds, 4 * bins).double().reshape(-1, bins), 1)
        kl = (q * (q.log() - s)).mean(1).reshape(-1, 4).mean(1)
        box = (weight * kl).sum() / normaliser
    else:
        priors = torch.cat(head.prior_generator.grid_priors(
            [(s, s) for s in SIZES], dtype=torch.float64, device='cpu')).repeat(2, 1)
        a, b = (_decode(kind, priors, _flat(x, 4)) for x in (cross_box, teacher.bbox_preds))
        overlap = _giou(a, b) if kind == 'retina' else _iou(a, b)
        box = (weight * (1 - overlap)).sum() / normaliser
    return dict(cls=cls_w * cls, box=box_w * box)


CASES = {  # kind -> tower conv, weights, box loss (the paper's settings)
    'gfl': (3, 1.0, 4.0, None),
    'retina': (3, 1.0, 1.0, dict(type='GIoULoss', eps=1e-12)),
    'fcos': (2, 0.4, 0.75, dict(type='IoULoss', mode='linear', eps=1e-12)),
}


@pytest.mark.parametrize('student_width', [8, 6])
@pytest.mark.parametrize('kind', sorted(CASES))
def test_against_plain_torch_float64(kind, student_width):
    conv, cls_w, box_w, loss_box = CASES[kind]
    head = _head(kind)
    teacher = _teacher_outputs(head, conv)
    loss = CrossKDLoss(student_width, 8, tower_conv=conv, cls_weight=cls_w, box_weight=box_w,
                       loss_box=loss_box, eps=EPS).double()
    towers = _student_towers(student_width)
    got = loss(HeadOutputs([], [], towers), teacher, TeacherDenseHead(head, {
        'gfl': 'gfl', 'retina': 'anchor', 'fcos': 'point'}[kind]))
    copies = {t: [x.detach().clone().requires_grad_() for x in v] for t, v in towers.items()}
    if student_width == 8:
        assert isinstance(loss.projectors['cls'], torch.nn.Identity)

        def projector(x, _tower=None):
            return x
    else:
        weights = {t: loss.projectors[t].weight.detach() for t in ('cls', 'reg')}
        biases = {t: loss.projectors[t].bias.detach() for t in ('cls', 'reg')}
    cross = {}
    for tower in ('cls', 'reg'):
        if student_width == 8:
            cross[tower] = copies[tower]
        else:
            cross[tower] = [F.conv2d(x, weights[tower][:, :, None, None], biases[tower])
                            for x in copies[tower]]
    want = _reference(head, kind, cross, teacher, conv, lambda x: x, cls_w, box_w)
    assert set(got) == {'cls', 'box'}
    for key in want:
        assert want[key].item() > 0, key
        torch.testing.assert_close(got[key], want[key], rtol=1e-7, atol=1e-12)
    sum(got.values()).backward()
    sum(want.values()).backward()
    for tower in ('cls', 'reg'):
        for mine, theirs in zip(towers[tower], copies[tower]):
            # mmdet's GFL / FCOS heads pass box outputs through float32 (`.float()`): their
            # backward carries float32 rounding (RetinaNet's, without the cast, meets 1e-7).
            torch.testing.assert_close(mine.grad, theirs.grad, rtol=5e-5, atol=1e-9)
            assert mine.grad.abs().sum() > 0  # through the teacher's head to the student
    # The teacher's head stays frozen: no gradient ever reaches its weights.
    assert all(param.grad is None for param in head.parameters())


def test_tail_restores_the_teachers_head():
    head = _head('gfl')
    teacher = _teacher_outputs(head, 3)
    towers = {t: [x.detach() for x in v] for t, v in teacher.towers.items()}
    # The teacher's own pre-activations through its own tail: its own predictions.
    cls, box = TeacherDenseHead(head, 'gfl').tail(towers, 3)
    for mine, theirs in zip(cls + box, teacher.cls_scores + teacher.bbox_preds):
        torch.testing.assert_close(mine, theirs)
    again = _teacher_outputs(head, 3)
    for mine, theirs in zip(again.cls_scores, teacher.cls_scores):
        torch.testing.assert_close(mine, theirs)
    assert len(head.cls_convs) == 3 and len(head.reg_convs) == 3


def test_heads_that_cannot_pair_are_refused():
    loss = CrossKDLoss(8, 8, tower_conv=3)
    with pytest.raises(ValueError, match=r'tower_conv=3, but GFLHead.cls_convs has 2 convs'):
        loss.check_heads(_head('gfl', convs=2), _head('gfl'), 'distill_losses.crosskd')
    with pytest.raises(ValueError, match='give loss_box'):
        loss.check_heads(_head('retina'), _head('retina'), 'distill_losses.crosskd')
    with pytest.raises(ValueError, match='tower_conv must be'):
        CrossKDLoss(8, 8, tower_conv=0)
