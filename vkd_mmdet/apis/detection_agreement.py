"""How closely one detector's detections reproduce another's on the same image.

Used to check a converted model (ONNX Runtime) against the PyTorch model it came from: the same
boxes, scores and labels, up to float rounding.
"""
from dataclasses import dataclass
from typing import Iterable

import torch
from mmdet.structures.bbox import bbox_overlaps
from mmengine.structures import InstanceData

#: Boxes this close (pixels, every coordinate) are the same detection whatever their IoU.
SAME_BOX_PX = 0.5


@dataclass(frozen=True)
class DetectionAgreement:
    """Detections of a model (``ours``) matched one to one to a reference's.

    Reference detections, by decreasing score, are matched to the unmatched detection of ours with
    the same label and the closest box (largest coordinate difference) if their IoU is at least
    ``min_iou`` (0.9 by default: the same detection up to rounding, not a neighbour NMS let
    through) or the boxes are within ``SAME_BOX_PX`` (boxes of zero width or height have no IoU).

    Attributes:
        num_ours (int): detections of ours.
        num_reference (int): detections of the reference.
        num_matched (int): matched pairs.
        max_box_diff (float): largest absolute difference of a box coordinate over the matched
            pairs, in pixels of the original image (0 when nothing is matched).
        max_score_diff (float): largest absolute score difference over the matched pairs.
    """
    num_ours: int
    num_reference: int
    num_matched: int
    max_box_diff: float
    max_score_diff: float

    @property
    def matched_fraction(self) -> float:
        """Matched pairs over the larger side's detections (1 when neither has any)."""
        larger = max(self.num_ours, self.num_reference)
        return self.num_matched / larger if larger else 1.0

    def agrees(self, box_atol: float, score_atol: float, min_matched: float = 1.0) -> bool:
        """At least ``min_matched`` of the detections are matched, each pair within the
        tolerances."""
        return (self.matched_fraction >= min_matched and self.max_box_diff <= box_atol
                and self.max_score_diff <= score_atol)

    def __str__(self) -> str:
        return (f'{self.num_matched} of {self.num_reference} reference / {self.num_ours} '
                f'detections matched (same label), max |box diff| {self.max_box_diff:.2e} px, '
                f'max |score diff| {self.max_score_diff:.2e}')


def compare_detections(ours: InstanceData,
                       reference: InstanceData,
                       min_iou: float = 0.9) -> DetectionAgreement:
    """Match ``ours`` to ``reference`` (each with ``bboxes`` (N, 4) xyxy, ``scores`` (N,),
    ``labels`` (N,)) and measure the differences of the matched pairs."""
    if not 0 < min_iou <= 1:
        raise ValueError(f'min_iou: expected a value in (0, 1], got {min_iou}')
    boxes, ref_boxes = ours.bboxes.detach().cpu().float(), reference.bboxes.detach().cpu().float()
    scores, ref_scores = ours.scores.detach().cpu().float(), reference.scores.detach().cpu()
    same_label = reference.labels.cpu()[:, None] == ours.labels.cpu()[None, :]
    iou = bbox_overlaps(ref_boxes, boxes)  # (num_reference, num_ours)
    # largest coordinate difference: the candidate; also what pairs boxes of zero width or
    # height, which have no IoU
    distance = (ref_boxes[:, None, :] - boxes[None, :, :]).abs().amax(-1)
    distance[~same_label] = float('inf')
    pairs = []
    for i in torch.argsort(ref_scores.float(), descending=True).tolist():
        if distance.shape[1] == 0:
            break
        closest, j = distance[i].min(0)
        if closest < float('inf') and (iou[i, j] >= min_iou or closest <= SAME_BOX_PX):
            pairs.append((i, int(j)))
            distance[:, j] = float('inf')  # matched once
    if pairs:
        ref_index, index = (torch.tensor(side) for side in zip(*pairs))
        box_diff = (boxes[index] - ref_boxes[ref_index]).abs().max().item()
        score_diff = (scores[index] - ref_scores[ref_index].float()).abs().max().item()
    else:
        box_diff = score_diff = 0.0
    return DetectionAgreement(len(boxes), len(ref_boxes), len(pairs), box_diff, score_diff)


def merge_agreements(agreements: Iterable[DetectionAgreement]) -> DetectionAgreement:
    """One agreement over several images: counts summed, largest differences."""
    agreements = list(agreements)
    if not agreements:
        raise ValueError('agreements: expected at least one image')
    return DetectionAgreement(
        sum(a.num_ours for a in agreements), sum(a.num_reference for a in agreements),
        sum(a.num_matched for a in agreements), max(a.max_box_diff for a in agreements),
        max(a.max_score_diff for a in agreements))
