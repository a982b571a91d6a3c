"""LD: the teacher's box-edge distributions taught to a GFL student (Zheng et al., CVPR 2022)."""
from typing import Dict, List, Optional

import torch
import torch.nn as nn
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox_overlaps
from torch import Tensor

from ..utils.dense_head_adapters import head_family
from ..utils.dense_head_outputs import HeadAssignment, HeadOutputs
from .dense_head_distill_loss import DenseHeadDistillLoss, flatten_levels


@MODELS.register_module()
class LDLoss(DenseHeadDistillLoss):
    """Localization distillation on GFL heads, the authors' full form.

    Zheng et al., "Localization Distillation for Dense Object Detection", CVPR 2022.

    A GFL head predicts each box edge as a distribution over ``reg_max + 1`` bins; LD matches
    the student's to the teacher's, softened at temperature ``T``, with the KL divergence. Three
    terms, each off at weight 0:

    - **main region** (``loss_weight``, paper 0.25, T 10): on the student's positives (its own
      assignment of the step), ``sum_pos w * mean_edges KL_T(teacher edge || student edge)``,
      ``w`` the student's detached top class score (GFL's weighting of its box losses);
    - **classification KD** (``cls_weight``, 10, T 2): on the same positives, the KL between the
      teacher's and the student's class distributions (softmax over the K logits at T),
      averaged over the positives;
    - **valuable localisation region** (``vlr_weight``, 0.25, T 10): the main-region term on
      the *other* priors whose DIoU with some GT lies in ``[alpha * t_g, t_g]``, ``t_g`` that
      GT's ATSS threshold (mean + std of the IoUs of its ``topk`` candidates per level, nearest
      by centre distance), ``alpha`` 0.25: a relaxed ATSS ring around the positives.

    Each KL is mmdet's ``KnowledgeDistillationKLDivLoss`` (``T^2 * mean over bins`` of the
    KL, the convention of LD's release and mmdet's ``LDHead``, to which the published weights
    refer); ``loss_weight`` 0.25 with ``cls_weight = vlr_weight = 0`` is mmdet's built-in LD
    (GFL R101 -> R50 1x: 40.1 -> 41.0 AP); all three give the paper's 42.1.

    Both heads must be GFL-type with the same ``reg_max``, strides, priors and classes
    (:meth:`check_heads`).

    Args:
        loss_weight (float): main-region weight. Defaults to 0.25.
        temperature (float): T of both box terms. Defaults to 10.
        cls_weight (float): classification KD weight (0: off). Defaults to 10.
        cls_temperature (float): its T. Defaults to 2.
        vlr_weight (float): valuable-localisation-region weight (0: off). Defaults to 0.25.
        vlr_alpha (float): the ring's lower bound as a fraction of ``t_g``. Defaults to 0.25.
        vlr_topk (int): ATSS candidates per level for ``t_g``. Defaults to 9.
        init_cfg (dict, optional): mmengine init config.

    Returns:
        dict[str, Tensor]: ``ld`` and, when on, ``cls`` and ``vlr`` (logged as
        ``loss_<name>_ld`` ...).

    Config:
        ``distill_losses=dict(ld=dict(type='LDLoss'))``
    """

    extras = ('assignment', 'gt_bboxes')

    def __init__(self,
                 loss_weight: float = 0.25,
                 temperature: float = 10.0,
                 cls_weight: float = 10.0,
                 cls_temperature: float = 2.0,
                 vlr_weight: float = 0.25,
                 vlr_alpha: float = 0.25,
                 vlr_topk: int = 9,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(loss_weight, init_cfg)
        for key, value in (('cls_weight', cls_weight), ('vlr_weight', vlr_weight)):
            if not value >= 0:
                raise ValueError(f'LDLoss: {key} must be >= 0 (0 switches the term off), got '
                                 f'{value!r}')
        if not 0 <= vlr_alpha <= 1:
            raise ValueError(f'LDLoss: vlr_alpha must lie in [0, 1], got {vlr_alpha!r}')
        self.cls_weight = float(cls_weight)
        self.vlr_weight = float(vlr_weight)
        self.vlr_alpha = vlr_alpha
        self.vlr_topk = vlr_topk
        # mmdet's own KL (looked up, not imported: importing mmdet.models imports mmpretrain).
        kl_div = MODELS.get('KnowledgeDistillationKLDivLoss')
        self.box_kd = kl_div(T=temperature)
        self.cls_kd = kl_div(T=cls_temperature)

    def check_heads(self, student_head: nn.Module, teacher_head: nn.Module, key: str) -> None:
        pair = f'teacher {type(teacher_head).__name__}, student {type(student_head).__name__}'
        families = {side: head_family(head, f'{key} ({side})') for side, head in
                    (('student', student_head), ('teacher', teacher_head))}
        if set(families.values()) != {'gfl'}:
            raise ValueError(f'{key}: LDLoss distils box-edge distributions and needs GFL-type '
                             f'heads (GFLHead, LDHead) on both sides; got {pair}')
        differ = {}
        for what, read in (('reg_max', lambda h: h.reg_max),
                           ('num_classes', lambda h: h.num_classes),
                           ('strides', lambda h: [tuple(s) for s in h.prior_generator.strides]),
                           ('priors (base anchors)',
                            lambda h: [a.tolist() for a in h.prior_generator.base_anchors])):
            student, teacher = read(student_head), read(teacher_head)
            if student != teacher:
                differ[what] = f'student {student}, teacher {teacher}'
        if differ:
            listed = '; '.join(f'{what} ({text})' for what, text in differ.items())
            raise ValueError(f'{key}: LDLoss compares the two heads location by location and '
                             f'bin by bin; they differ in {listed} ({pair})')

    def forward(self, student: HeadOutputs, teacher: HeadOutputs, assignment: HeadAssignment,
                gt_bboxes: List[Tensor]) -> Dict[str, Tensor]:
        for level, (s, t) in enumerate(zip(student.bbox_preds, teacher.bbox_preds)):
            if s.shape != t.shape:
                raise ValueError(f'LDLoss: level {level} student box distributions '
                                 f'{tuple(s.shape)} and teacher {tuple(t.shape)} differ (same '
                                 'input size and heads expected)')
        num_classes = assignment.num_classes
        bins = student.bbox_preds[0].shape[1] // 4
        s_cls = flatten_levels(student.cls_scores, num_classes)
        t_cls = flatten_levels(teacher.cls_scores, num_classes)
        s_box = flatten_levels(student.bbox_preds, 4 * bins)
        t_box = flatten_levels(teacher.bbox_preds, 4 * bins)
        labels = torch.cat(assignment.labels, dim=1).reshape(-1)
        label_weights = torch.cat(assignment.label_weights, dim=1).reshape(-1)
        positive = (labels >= 0) & (labels < num_classes)
        # GFL weighs a location's box losses by the student's detached top class score.
        score = s_cls.detach().sigmoid().max(dim=1).values
        losses = {'ld': self.loss_weight * self._edge_kd(s_box, t_box, positive, score, bins)}
        if self.cls_weight:
            kd = self.cls_kd(s_cls[positive], t_cls[positive], weight=label_weights[positive],
                             avg_factor=max(int(positive.sum()), 1)) if positive.any() \
                else s_cls.sum() * 0
            losses['cls'] = self.cls_weight * kd
        if self.vlr_weight:
            num = student.cls_scores[0].shape[0]
            priors = torch.cat(assignment.priors, dim=1)
            counts = [level.shape[1] for level in assignment.priors]
            ring = torch.cat([
                self.valuable_region(priors[i], counts, gt_bboxes[i]) for i in range(num)])
            region = ring & ~positive & (label_weights > 0)
            losses['vlr'] = self.vlr_weight * self._edge_kd(s_box, t_box, region, score, bins)
        return losses

    def _edge_kd(self, s_box: Tensor, t_box: Tensor, region: Tensor, score: Tensor,
                 bins: int) -> Tensor:
        """``sum_region score * mean_edges KL_T``; 0 (with a graph) on an empty region."""
        if not region.any():
            return s_box.sum() * 0
        return self.box_kd(s_box[region].reshape(-1, bins), t_box[region].reshape(-1, bins),
                           weight=score[region][:, None].expand(-1, 4).reshape(-1),
                           avg_factor=4.0)

    @torch.no_grad()
    def valuable_region(self, priors: Tensor, counts: List[int], gt_bboxes: Tensor) -> Tensor:
        """``(A,)`` bool: priors whose DIoU with some GT ``g`` lies in
        ``[alpha * t_g, t_g]``, ``t_g`` the ATSS threshold of ``g``.

        Args:
            priors (Tensor): ``(A, 4)`` one image's priors, levels concatenated.
            counts (list[int]): priors per level.
            gt_bboxes (Tensor): ``(G, 4)`` its GT boxes.
        """
        # Deferred: importing mmdet.models at import time would import mmpretrain.
        from mmdet.models.losses.iou_loss import diou_loss
        from mmdet.models.task_modules.assigners.atss_assigner import bbox_center_distance
        if gt_bboxes.numel() == 0:
            return priors.new_zeros(priors.shape[0], dtype=torch.bool)
        ious = bbox_overlaps(priors, gt_bboxes)  # (A, G)
        distances = bbox_center_distance(gt_bboxes, priors)  # (A, G)
        candidates, start = [], 0
        for count in counts:
            k = min(self.vlr_topk, count)
            nearest = distances[start:start + count].topk(k, dim=0, largest=False).indices
            candidates.append(nearest + start)
            start += count
        candidate_ious = ious.gather(0, torch.cat(candidates))
        threshold = candidate_ious.mean(0) + candidate_ious.std(0)  # (G,)
        num_priors, num_gts = ious.shape
        diou = 1 - diou_loss(priors[:, None].expand(-1, num_gts, 4).reshape(-1, 4),
                             gt_bboxes[None].expand(num_priors, -1, 4).reshape(-1, 4),
                             reduction='none').view(num_priors, num_gts)
        return ((diou >= self.vlr_alpha * threshold) & (diou <= threshold)).any(dim=1)
