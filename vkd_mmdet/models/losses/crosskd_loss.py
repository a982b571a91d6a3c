"""CrossKD: the student's head features run through the teacher's head (Wang et al., CVPR 2024)."""
from typing import Dict, Mapping, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor

from ..projectors import LINEAR, build_projector
from ..utils import masked_channel_stats, standardize_channels
from ..utils.dense_head_adapters import TeacherDenseHead, head_family, tower_preactivation
from ..utils.dense_head_outputs import TOWERS, HeadOutputs
from .dense_head_distill_loss import DenseHeadDistillLoss, flatten_levels


@MODELS.register_module()
class CrossKDLoss(DenseHeadDistillLoss):
    """Cross-head knowledge distillation for dense detectors.

    Wang et al., "CrossKD: Cross-Head Knowledge Distillation for Object Detection", CVPR 2024.

    Each tower (classification, regression) of the student's head is cut after conv ``k``
    (``tower_conv``), before its activation. That feature, per level, is (1x1-mapped to the
    teacher's width when the widths differ,) standardised per channel over ``(N, H, W)`` and
    re-coloured with the teacher's per-channel mean and std at the same point of its own head,
    then runs through the rest of the **teacher's** head (frozen weights; gradients flow back
    through them to the student's tower). Those cross-head predictions ``p^x`` are matched to
    the teacher's own ``p^t``, so the student's head keeps only its task losses:

    - classification, on every location and class: quality-focal KD,
      ``BCE(sigma(p^x), sigma(p^t)) * |sigma(p^x) - sigma(p^t)|^beta``;
    - boxes, each location weighted by the teacher's top class score ``w = max_c sigma(p^t)``:
      for GFL heads the KL between the edge distributions at T (mmdet's
      ``KnowledgeDistillationKLDivLoss``: ``T^2 * mean over bins``, averaged over the 4 edges);
      for anchor / point heads ``loss_box`` (GIoU for RetinaNet and ATSS, IoU for FCOS) between
      the boxes decoded from the cross-head and the teacher's predictions on the same priors.

    Both sums are divided by ``sum_locations w`` (the teacher's soft count of objects; at
    least 1). The paper leaves its normaliser unnamed; ours is ours.

    Paper settings: GFL ``cls_weight`` 1.0, ``box_weight`` 4.0, ``tower_conv`` 3 (40.2 -> 43.7
    AP, R101 -> R50 1x); RetinaNet and ATSS 1.0 / 1.0 with GIoU, k 3; FCOS 0.4 / 0.75 with IoU,
    k 2.

    Args:
        tower_conv (int): the 1-based tower conv ``k``. Defaults to 3.
        cls_weight (float): classification term weight. Defaults to 1.0.
        box_weight (float): box term weight. Defaults to 4.0.
        beta (float): the focal exponent. Defaults to 1.0.
        temperature (float): T of the GFL box KL. Defaults to 1.0.
        loss_box (dict, optional): mmdet box loss for anchor / point heads
            (``dict(type='GIoULoss')``, ``dict(type='IoULoss', mode='linear')``); its
            ``loss_weight`` stays 1 (``box_weight`` scales). Unused for GFL heads.
        in_channels (int): the student head's ``feat_channels`` (filled by the distiller).
        out_channels (int): the teacher head's (filled by the distiller).
        projector (dict): the map when ``in_channels != out_channels``. Defaults to
            ``dict(type='LinearAdapter')`` (a 1x1 convolution); equal widths take none.
        eps (float): added to the variances. Defaults to 1e-5.
        loss_weight (float): scales both terms. Defaults to 1.0.
        init_cfg (dict, optional): mmengine init config.

    Returns:
        dict[str, Tensor]: ``cls`` and ``box`` (logged as ``loss_<name>_cls`` / ``_box``).

    Config:
        ``distill_losses=dict(crosskd=dict(type='CrossKDLoss', cls_weight=1.0, box_weight=4.0))``
    """

    extras = ('teacher_head',)
    channel_args = {'in_channels': 'student', 'out_channels': 'teacher'}

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 tower_conv: int = 3,
                 cls_weight: float = 1.0,
                 box_weight: float = 4.0,
                 beta: float = 1.0,
                 temperature: float = 1.0,
                 loss_box: Optional[Mapping] = None,
                 projector: Optional[Mapping] = LINEAR,
                 eps: float = 1e-5,
                 loss_weight: float = 1.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(loss_weight, init_cfg)
        if not (isinstance(tower_conv, int) and tower_conv >= 1):
            raise ValueError(f'CrossKDLoss: tower_conv must be a 1-based conv index >= 1, got '
                             f'{tower_conv!r}')
        for key, value in (('cls_weight', cls_weight), ('box_weight', box_weight)):
            if not value >= 0:
                raise ValueError(f'CrossKDLoss: {key} must be >= 0, got {value!r}')
        self.tower_conv = tower_conv
        self.cls_weight = float(cls_weight)
        self.box_weight = float(box_weight)
        self.beta = beta
        self.eps = eps
        # mmdet's own KL (looked up, not imported: importing mmdet.models imports mmpretrain).
        self.box_kd = MODELS.get('KnowledgeDistillationKLDivLoss')(T=temperature)
        self.loss_box = None if loss_box is None else MODELS.build(dict(loss_box))
        # One map per tower: the two towers' features are different spaces.
        self.projectors = nn.ModuleDict({
            tower: build_projector(projector if in_channels != out_channels else None,
                                   in_channels, out_channels, 'CrossKDLoss')
            for tower in TOWERS})

    def check_heads(self, student_head: nn.Module, teacher_head: nn.Module, key: str) -> None:
        pair = f'teacher {type(teacher_head).__name__}, student {type(student_head).__name__}'
        family = head_family(teacher_head, f'{key} (teacher)')
        for side, head in (('student', student_head), ('teacher', teacher_head)):
            for tower in TOWERS:
                tower_preactivation(head, tower, self.tower_conv, f'{key} ({side})')
        strides = [[tuple(s) if isinstance(s, tuple) else (s, s)
                    for s in head.prior_generator.strides] for head in (student_head, teacher_head)]
        if strides[0] != strides[1]:
            raise ValueError(f'{key}: the student head runs on strides {strides[0]}, the '
                             f'teacher head on {strides[1]}; CrossKD feeds each student level '
                             f"to the teacher's head at the same stride ({pair})")
        if family != 'gfl' and self.loss_box is None:
            raise ValueError(f"{key}: the teacher's {type(teacher_head).__name__} predicts "
                             "boxes, not distributions: give loss_box (dict(type='GIoULoss') "
                             "for RetinaNet / ATSS, dict(type='IoULoss') for FCOS)")

    def forward(self, student: HeadOutputs, teacher: HeadOutputs,
                teacher_head: TeacherDenseHead) -> Dict[str, Tensor]:
        cross_towers = {}
        for tower in TOWERS:
            cross_towers[tower] = []
            for level, (s, t) in enumerate(zip(student.towers[tower], teacher.towers[tower])):
                mapped = self.projectors[tower](s)
                if mapped.shape != t.shape:
                    raise ValueError(f'CrossKDLoss: level {level} {tower} tower: student '
                                     f'{tuple(mapped.shape)} (mapped), teacher {tuple(t.shape)}'
                                     ' (same input size expected)')
                mean, var = masked_channel_stats(t)
                cross_towers[tower].append(
                    standardize_channels(mapped, eps=self.eps)
                    * (var + self.eps).sqrt()[None, :, None, None] + mean[None, :, None, None])
        cross_cls, cross_box = teacher_head.tail(cross_towers, self.tower_conv)
        # mmdet's GFL / ATSS / FCOS heads cast box outputs to float32: compare in the features'
        # precision (a KL between close distributions cancels badly in float32).
        dtype = cross_towers['cls'][0].dtype
        cross_box = [box.to(dtype) for box in cross_box]
        teacher = HeadOutputs([x.to(dtype) for x in teacher.cls_scores],
                              [x.to(dtype) for x in teacher.bbox_preds])
        num_classes = teacher_head.cls_channels
        p_cross = flatten_levels(cross_cls, num_classes)
        target = flatten_levels(teacher.cls_scores, num_classes).sigmoid()
        weight = target.max(dim=1).values
        normaliser = weight.sum().clamp(min=1)
        quality = (p_cross.sigmoid() - target).abs().pow(self.beta)
        cls_loss = (F.binary_cross_entropy_with_logits(p_cross, target, reduction='none')
                    * quality).sum() / normaliser
        if teacher_head.family == 'gfl':
            bins = teacher_head.reg_max + 1
            box_cross = flatten_levels(cross_box, 4 * bins).reshape(-1, bins)
            box_teacher = flatten_levels(teacher.bbox_preds, 4 * bins).reshape(-1, bins)
            box_loss = self.box_kd(box_cross, box_teacher,
                                   weight=weight[:, None].expand(-1, 4).reshape(-1),
                                   avg_factor=4 * normaliser)
        else:
            priors = torch.cat(teacher_head.priors(teacher.cls_scores))
            priors = priors.repeat(cross_box[0].shape[0], 1)  # (N * sum_l H_l W_l A, 2 or 4)
            box_loss = self.loss_box(
                teacher_head.decode(priors, flatten_levels(cross_box, 4)),
                teacher_head.decode(priors, flatten_levels(teacher.bbox_preds, 4)),
                weight=weight, avg_factor=normaliser)
        return {'cls': self.loss_weight * self.cls_weight * cls_loss,
                'box': self.loss_weight * self.box_weight * box_loss}

