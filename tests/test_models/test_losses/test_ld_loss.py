"""LDLoss against mmdet's own LDHead (the main region) and against plain torch written from the
paper's equations (all three terms, values and gradients, float64)."""
import math

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import ConfigDict
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

from vkd_mmdet.models.losses import LDLoss
from vkd_mmdet.models.utils import HeadOutputs
from vkd_mmdet.models.utils.dense_head_adapters import record_assignment

NUM_CLASSES, REG_MAX, STRIDES, SIZE = 3, 4, (8, 16), 64


def gfl_head_cfg(head_type='GFLHead', reg_max=REG_MAX, strides=STRIDES, **extra):
    return dict(
        type=head_type, num_classes=NUM_CLASSES, in_channels=8, feat_channels=8,
        stacked_convs=1, reg_max=reg_max,
        norm_cfg=dict(type='GN', num_groups=4, requires_grad=True),
        anchor_generator=dict(type='AnchorGenerator', ratios=[1.0], octave_base_scale=2,
                              scales_per_octave=1, strides=list(strides)),
        loss_cls=dict(type='QualityFocalLoss', use_sigmoid=True, beta=2.0, loss_weight=1.0),
        loss_dfl=dict(type='DistributionFocalLoss', loss_weight=0.25),
        loss_bbox=dict(type='GIoULoss', loss_weight=2.0),
        train_cfg=ConfigDict(assigner=dict(type='ATSSAssigner', topk=9), allowed_border=-1,
                             pos_weight=-1, debug=False), **extra)


def _build(cfg):
    init_default_scope('mmdet')
    return MODELS.build(cfg)


def _batch(dtype=torch.float32, seed=0):
    """Two 64x64 images, their GTs, and random student / teacher GFL predictions."""
    generator = torch.Generator().manual_seed(seed)
    gts = []
    for count in (3, 2):
        xy = torch.rand(count, 2, generator=generator) * 40
        wh = 8 + torch.rand(count, 2, generator=generator) * 20
        gts.append(InstanceData(bboxes=torch.cat([xy, (xy + wh).clamp(max=SIZE)], 1),
                                labels=torch.randint(NUM_CLASSES, (count,), generator=generator)))
    metas = [dict(img_shape=(SIZE, SIZE), pad_shape=(SIZE, SIZE),
                  batch_input_shape=(SIZE, SIZE))] * 2

    def predictions():
        sizes = [SIZE // s for s in STRIDES]
        return ([torch.randn(2, NUM_CLASSES, h, h, generator=generator, dtype=dtype)
                 for h in sizes],
                [2 * torch.randn(2, 4 * (REG_MAX + 1), h, h, generator=generator, dtype=dtype)
                 for h in sizes])

    return gts, metas, predictions(), predictions()


def _assignment(head, cls_scores, bbox_preds, gts, metas):
    record = []
    with record_assignment(head, record):
        head.loss_by_feat(cls_scores, bbox_preds, gts, metas)
    assert len(record) == 1
    return record[0]


def test_main_region_equals_mmdets_ld_head():
    """loss_weight 0.25, T 10, the other terms off: mmdet's built-in LD (LDHead's loss_ld)."""
    gfl = _build(gfl_head_cfg())
    ld_head = _build(gfl_head_cfg('LDHead', loss_ld=dict(
        type='KnowledgeDistillationKLDivLoss', loss_weight=0.25, T=10)))
    gts, metas, (s_cls, s_box), (t_cls, t_box) = _batch()
    assignment = _assignment(gfl, s_cls, s_box, gts, metas)
    ours = LDLoss(cls_weight=0, vlr_weight=0)(
        HeadOutputs(s_cls, s_box), HeadOutputs(t_cls, t_box), assignment,
        [gt.bboxes for gt in gts])
    assert set(ours) == {'ld'}
    theirs = sum(ld_head.loss_by_feat(s_cls, s_box, gts, metas, t_box)['loss_ld'])
    assert any(level.lt(NUM_CLASSES).any() for level in assignment.labels)  # positives
    torch.testing.assert_close(ours['ld'], theirs, rtol=1e-5, atol=1e-7)


def _kl_rows(student, teacher, temperature):
    """T^2 * mean over the row of q (log q - log p), q = softmax(teacher / T) by hand."""
    q = torch.exp(teacher / temperature)
    q = q / q.sum(1, keepdim=True)
    p = torch.exp(student / temperature)
    p = p / p.sum(1, keepdim=True)
    return temperature**2 * (q * (q.log() - p.log())).sum(1) / student.shape[1]


def _iou(a, b):
    lt, rb = torch.max(a[:2], b[:2]), torch.min(a[2:], b[2:])
    inter = (rb - lt).clamp(min=0).prod()
    union = (a[2:] - a[:2]).prod() + (b[2:] - b[:2]).prod() - inter
    return inter / union


def _diou(a, b):
    outer = torch.max(a[2:], b[2:]) - torch.min(a[:2], b[:2])
    centre = ((a[:2] + a[2:]) / 2 - (b[:2] + b[2:]) / 2).square().sum()
    return _iou(a, b) - centre / outer.square().sum()


def _ring(priors_per_level, gt_bboxes, alpha, topk):
    """Priors (levels concatenated) in some GT's [alpha t, t] DIoU ring; t = ATSS threshold."""
    priors = torch.cat(priors_per_level)
    ring = torch.zeros(len(priors), dtype=torch.bool)
    for gt in gt_bboxes:
        centre = (gt[:2] + gt[2:]) / 2
        candidates, start = [], 0
        for level in priors_per_level:
            distance = [float(((p[:2] + p[2:]) / 2 - centre).norm()) for p in level]
            order = sorted(range(len(level)), key=lambda i: distance[i])
            candidates += [start + i for i in order[:topk]]
            start += len(level)
        ious = torch.stack([_iou(priors[i], gt) for i in candidates])
        mean = ious.mean()
        std = math.sqrt(sum((x - mean)**2 for x in ious) / (len(ious) - 1))
        threshold = mean + std
        for i, prior in enumerate(priors):
            d = _diou(prior, gt)
            if alpha * threshold <= d <= threshold:
                ring[i] = True
    return ring


def _reference(s_cls, s_box, t_cls, t_box, assignment, gts):
    """The paper's three terms, written from scratch: flatten per image, level after level."""
    def flat(maps, channels):
        return torch.cat([torch.cat([m[n].reshape(channels, -1).t() for m in maps])
                          for n in range(2)])

    bins = REG_MAX + 1
    sc, tc = flat(s_cls, NUM_CLASSES), flat(t_cls, NUM_CLASSES)
    sb, tb = flat(s_box, 4 * bins), flat(t_box, 4 * bins)
    labels = torch.cat([torch.cat([level[n] for level in assignment.labels]) for n in range(2)])
    weights = torch.cat([torch.cat([level[n] for level in assignment.label_weights])
                         for n in range(2)])
    positive = labels < NUM_CLASSES
    score = torch.sigmoid(sc.detach()).max(1).values

    def box_term(region):
        per_edge = _kl_rows(sb[region].reshape(-1, bins), tb[region].reshape(-1, bins), 10.0)
        return (per_edge.reshape(-1, 4).mean(1) * score[region]).sum()

    ld = 0.25 * box_term(positive)
    cls = 10 * _kl_rows(sc[positive], tc[positive], 2.0).sum() / positive.sum()
    ring = torch.cat([_ring([level[n] for level in assignment.priors], gts[n].bboxes, 0.25, 9)
                      for n in range(2)])
    region = ring & ~positive & (weights > 0)
    assert region.any() and positive.any()
    return dict(ld=ld, cls=cls, vlr=0.25 * box_term(region))


def test_all_terms_against_plain_torch_float64():
    head = _build(gfl_head_cfg())
    gts, metas, (s_cls, s_box), (t_cls, t_box) = _batch(torch.float64, seed=3)
    # mmdet assigns in float32 (its priors are); the loss then runs in float64.
    assignment = _assignment(head, [x.float() for x in s_cls], [x.float() for x in s_box], gts,
                             metas)
    assignment.priors = [x.double() for x in assignment.priors]
    for gt in gts:
        gt.bboxes = gt.bboxes.double()
    leaves = [x.clone().requires_grad_() for x in s_cls + s_box]
    ours = LDLoss()(HeadOutputs(leaves[:2], leaves[2:]), HeadOutputs(t_cls, t_box), assignment,
                    [gt.bboxes for gt in gts])
    copies = [x.detach().clone().requires_grad_() for x in leaves]
    want = _reference(copies[:2], copies[2:], t_cls, t_box, assignment, gts)
    assert set(ours) == set(want) == {'ld', 'cls', 'vlr'}
    # mmdet's weight_reduce_loss divides by avg_factor + float32 eps: 3e-8 relative.
    for key in want:
        torch.testing.assert_close(ours[key], want[key], rtol=1e-7, atol=1e-12)
    sum(ours.values()).backward()
    sum(want.values()).backward()
    for got, expected in zip(leaves, copies):
        torch.testing.assert_close(got.grad, expected.grad, rtol=1e-7, atol=1e-12)


def test_terms_switch_off_and_scale():
    head = _build(gfl_head_cfg())
    gts, metas, (s_cls, s_box), (t_cls, t_box) = _batch(seed=5)
    assignment = _assignment(head, s_cls, s_box, gts, metas)
    args = (HeadOutputs(s_cls, s_box), HeadOutputs(t_cls, t_box), assignment,
            [gt.bboxes for gt in gts])
    full = LDLoss()(*args)
    double = LDLoss(loss_weight=0.5, cls_weight=20, vlr_weight=0.5)(*args)
    for key in full:
        torch.testing.assert_close(double[key], 2 * full[key])
    assert set(LDLoss(cls_weight=0)(*args)) == {'ld', 'vlr'}
    assert set(LDLoss(vlr_weight=0)(*args)) == {'ld', 'cls'}
    zero = LDLoss(loss_weight=0)(*args)['ld']
    assert zero.item() == 0


def test_no_positives_gives_a_zero_with_a_graph():
    head = _build(gfl_head_cfg())
    gts, metas, (s_cls, s_box), (t_cls, t_box) = _batch(seed=7)
    empty = [InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
             for _ in gts]
    s_box = [x.requires_grad_() for x in s_box]
    assignment = _assignment(head, s_cls, s_box, empty, metas)
    out = LDLoss()(HeadOutputs(s_cls, s_box), HeadOutputs(t_cls, t_box), assignment,
                   [gt.bboxes for gt in empty])
    assert all(value.item() == 0 for value in out.values())
    sum(out.values()).backward()


@pytest.mark.parametrize('change, named', [
    (dict(reg_max=8), 'reg_max (student 4, teacher 8)'),
    (dict(strides=(8, 32)), 'strides'),
])
def test_heads_that_differ_are_refused_by_name(change, named):
    student, teacher = _build(gfl_head_cfg()), _build(gfl_head_cfg(**change))
    with pytest.raises(ValueError, match=r'distill_losses\.ld: .*' + named.replace('(', r'\(')
                       .replace(')', r'\)')):
        LDLoss().check_heads(student, teacher, 'distill_losses.ld')


def test_retinanet_student_is_refused_naming_both_heads():
    retina = _build(dict(
        type='RetinaHead', num_classes=NUM_CLASSES, in_channels=8, feat_channels=8,
        stacked_convs=1,
        anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4, scales_per_octave=3,
                              ratios=[0.5, 1.0, 2.0], strides=list(STRIDES)),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0],
                        target_stds=[1.0, 1.0, 1.0, 1.0])))
    with pytest.raises(ValueError, match='teacher GFLHead, student RetinaHead'):
        LDLoss().check_heads(retina, _build(gfl_head_cfg()), 'distill_losses.ld')


def test_bad_weights_are_refused():
    with pytest.raises(ValueError, match='cls_weight'):
        LDLoss(cls_weight=-1)
    with pytest.raises(ValueError, match='vlr_alpha'):
        LDLoss(vlr_alpha=2)


@pytest.mark.parametrize('alpha', [0.25, 0.5])
def test_valuable_region_against_plain_torch(alpha):
    """The ring itself, prior by prior, on random GTs over the two levels' anchors."""
    head = _build(gfl_head_cfg())
    priors = head.prior_generator.grid_priors([(SIZE // s, SIZE // s) for s in STRIDES],
                                              device='cpu')
    loss = LDLoss(vlr_alpha=alpha)
    generator = torch.Generator().manual_seed(11)
    total = 0
    for _ in range(6):
        xy = torch.rand(4, 2, generator=generator) * 48
        gts = torch.cat([xy, xy + 4 + torch.rand(4, 2, generator=generator) * 30], 1)
        got = loss.valuable_region(torch.cat(priors), [len(p) for p in priors], gts)
        want = _ring(list(priors), gts, alpha, 9)
        assert torch.equal(got, want)
        total += int(want.sum())
    assert total > 0
