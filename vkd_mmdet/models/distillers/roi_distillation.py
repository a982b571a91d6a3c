"""RoI-level distillation inputs of a two-stage detector (ND / KD++ on Faster R-CNN).

During the student's ``loss`` the RoIs its RoI head samples are recorded with their labels, the
box-head embeddings fed to the classifier (``fc_cls``'s input: after the shared FCs' ReLU) and
the class logits; the teacher's own RoI extractor + box head then run on the same RoIs.
"""
import contextlib
from typing import Callable, Dict, Iterator, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmdet.structures.bbox import bbox2roi
from torch import Tensor

from ...compat.mmdet import bbox_forward, check_roi_head_api, intercept_bbox_loss
from ..utils import capture_inputs

#: What a loss consumes of the RoIs: box-head embeddings or class logits.
ROI_KINDS = ('embeddings', 'logits')


def check_roi_head(detector: nn.Module, key: str, loss_name: str) -> nn.Module:
    """The detector's single-stage RoI head (StandardRoIHead-like), or a clear error."""
    roi_head = getattr(detector, 'roi_head', None)
    bbox_head = getattr(roi_head, 'bbox_head', None)
    if roi_head is None or not hasattr(roi_head, 'bbox_loss') \
            or not hasattr(bbox_head, 'fc_cls'):
        raise ValueError(f'distill_losses.{loss_name}: RoI distillation needs a two-stage '
                         f'`{key}` with a StandardRoIHead and a box head with `fc_cls` (e.g. '
                         f'Faster R-CNN); {type(detector).__name__} has '
                         f'{type(roi_head).__name__ if roi_head is not None else "no RoI head"}')
    check_roi_head_api(roi_head)
    return roi_head


@contextlib.contextmanager
def capture_student_rois(detector: nn.Module) -> Iterator[Dict[str, Tensor]]:
    """Inside the context, record ``rois`` ``(R, 5)``, ``labels`` ``(R,)``, ``embeddings``
    ``(R, D)`` and ``logits`` ``(R, K + 1)`` of the RoIs sampled in ``detector.loss``."""
    roi_head = detector.roi_head
    record: Dict[str, Tensor] = {}

    def recording_bbox_loss(bbox_loss: Callable[..., dict], x: Tuple[Tensor, ...],
                            sampling_results: Sequence) -> dict:
        with capture_inputs(roi_head.bbox_head.fc_cls) as embeddings:
            results = bbox_loss(x, sampling_results)
        record.update(
            rois=bbox2roi([res.priors for res in sampling_results]),
            labels=roi_head.bbox_head.get_targets(sampling_results, roi_head.train_cfg,
                                                  concat=True)[0],
            embeddings=embeddings[-1], logits=results['cls_score'])
        return results

    with intercept_bbox_loss(roi_head, recording_bbox_loss):
        yield record


@torch.no_grad()
def teacher_roi_outputs(detector: nn.Module, feats: Sequence[Tensor],
                        rois: Tensor) -> Tuple[Tensor, Tensor]:
    """The teacher's box-head ``(embeddings, logits)`` on ``rois`` from its own features."""
    roi_head = detector.roi_head
    with capture_inputs(roi_head.bbox_head.fc_cls) as embeddings:
        logits = bbox_forward(roi_head, feats, rois)['cls_score']
    return embeddings[-1], logits


def roi_distill_losses(modules: Dict[str, nn.Module], student_record: Dict[str, Tensor],
                       teacher_record: Dict[str, Tensor],
                       generator: Optional[torch.Generator]) -> Dict[str, Tensor]:
    """``loss_<name>`` of every RoI loss, in float32: each module takes the student's and the
    teacher's ``module.consumes`` (``'embeddings'`` or ``'logits'``) on the student's RoIs, plus
    the extras it declares (``labels``: the RoI labels, ``generator``). ``teacher_record``
    holds the teacher's ``embeddings`` and ``logits`` on those RoIs
    (:func:`teacher_roi_outputs`)."""
    losses = {}
    extras = dict(labels=student_record['labels'], generator=generator)
    with torch.autocast(device_type=student_record['rois'].device.type, enabled=False):
        for name, module in modules.items():
            kind = module.consumes
            losses[f'loss_{name}'] = module(
                student_record[kind].float(), teacher_record[kind].float(),
                **{extra: extras[extra] for extra in module.extras})
    return losses
