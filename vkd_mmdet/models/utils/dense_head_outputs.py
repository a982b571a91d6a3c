"""What a dense-head distillation loss receives: each side's head outputs, the student's targets."""
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

from torch import Tensor

#: The two towers of a dense head (``cls_convs``, ``reg_convs``) by the name losses use.
TOWERS = ('cls', 'reg')


@dataclass
class HeadOutputs:
    """One side's dense-head outputs of a step, level by level (the head's own order).

    Attributes:
        cls_scores (list[Tensor]): per level ``(N, A * K, H_l, W_l)`` class logits (GFL: the
            joint class-quality logits), ``A`` priors per location, ``K`` classes.
        bbox_preds (list[Tensor]): per level ``(N, A * B, H_l, W_l)``: ``B = 4 * (reg_max + 1)``
            edge-distribution logits (GFL), 4 deltas (RetinaNet, ATSS) or 4 distances (FCOS).
        towers (dict[str, list[Tensor]]): ``'cls'`` / ``'reg'`` -> per level ``(N, C, H_l,
            W_l)``, the tower's feature before the activation of conv ``tower_conv`` (1-based);
            empty when no loss asks for it.
    """

    cls_scores: List[Tensor]
    bbox_preds: List[Tensor]
    towers: Dict[str, List[Tensor]] = field(default_factory=dict)


@dataclass
class HeadAssignment:
    """The student head's own targets of one step, as its ``get_targets`` returned them.

    GFL / ATSS layout (``GFLHead.get_targets``), per level, images stacked:

    Attributes:
        priors (list[Tensor]): ``(N, A_l, 4)`` anchors, x1 y1 x2 y2 in padded-batch pixels.
        labels (list[Tensor]): ``(N, A_l)`` int64; the class of a positive, ``num_classes``
            for a negative.
        label_weights (list[Tensor]): ``(N, A_l)``; 0 where the prior is ignored.
        bbox_targets (list[Tensor]): ``(N, A_l, 4)`` assigned GT boxes (pixels; 0 on negatives).
        avg_factor (float): the head's normaliser (the number of positives).
        strides (tuple[int]): each level's stride in pixels.
        num_classes (int): ``K``; ``labels == K`` marks a negative.
    """

    priors: List[Tensor]
    labels: List[Tensor]
    label_weights: List[Tensor]
    bbox_targets: List[Tensor]
    avg_factor: float
    strides: Tuple[int, ...]
    num_classes: int
