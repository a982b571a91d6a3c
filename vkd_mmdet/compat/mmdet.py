"""mmdet compatibility: the private parts of ``StandardRoIHead`` that RoI distillation uses.

Checked with mmdet 3.3.0 (both stacks of requirements/pinned*.txt). Each adapter checks its API
on every call (:func:`~.upstream_api.upstream_attribute`, a few microseconds): a removed or
re-signed method is an :class:`~.upstream_api.UpstreamAPIError` naming mmdet and the attribute.
tests/test_compat/test_mmdet.py compares each adapter with the public path, for a change of
meaning.
"""
import contextlib
from typing import Callable, Dict, Iterator, Sequence, Tuple

import torch.nn as nn
from torch import Tensor

from .upstream_api import upstream_attribute

#: The mmdet versions the adapters below were checked with.
CHECKED = '3.3.0'

# wrapper(bbox_loss, x, sampling_results) -> the dict bbox_loss returns
BBoxLossWrapper = Callable[[Callable[..., dict], Tuple[Tensor, ...], Sequence], dict]


def check_roi_head_api(roi_head: nn.Module) -> None:
    """Both private APIs below are there as checked (for a build-time error, before training)."""
    _bbox_forward_method(roi_head)
    _bbox_loss_method(roi_head)


def bbox_forward(roi_head: nn.Module, feats: Sequence[Tensor], rois: Tensor) -> Dict[str, Tensor]:
    """The box branch of ``roi_head`` on ``rois``: RoI extractor, shared head if any, box head.

    Relies on ``StandardRoIHead._bbox_forward(x, rois)`` (private; mmdet 3.3.0): the one place
    that picks the extractor's input levels and the optional shared head, so the box head runs
    on the features it sees in its own training and test.

    Args:
        roi_head (StandardRoIHead): the RoI head.
        feats (Sequence[Tensor]): neck outputs, each ``(N, C, H_l, W_l)``.
        rois (Tensor): ``(R, 5)``, batch index then ``x1, y1, x2, y2``.

    Returns:
        dict[str, Tensor]: ``cls_score`` ``(R, K + 1)``, ``bbox_pred`` ``(R, 4K)`` (or
        ``(R, 4)`` class-agnostic) and ``bbox_feats`` (the extractor's RoI features).
    """
    return _bbox_forward_method(roi_head)(feats, rois)


@contextlib.contextmanager
def intercept_bbox_loss(roi_head: nn.Module, wrapper: BBoxLossWrapper) -> Iterator[None]:
    """Inside the context, ``roi_head.loss`` runs ``wrapper(bbox_loss, x, sampling_results)``
    where it would call its own ``bbox_loss(x, sampling_results)``.

    Relies on ``StandardRoIHead.loss`` calling ``self.bbox_loss(x, sampling_results)`` (mmdet
    3.3.0): an instance attribute shadows the method for the block only, removed on exit, also
    when the block raises. Should a later ``loss`` stop calling it, the wrapper does not run:
    callers check that it did (``DetectionDistiller`` raises when no RoIs were recorded).
    """
    original = _bbox_loss_method(roi_head)

    def bbox_loss(x: Tuple[Tensor, ...], sampling_results: Sequence) -> dict:
        return wrapper(original, x, sampling_results)

    roi_head.bbox_loss = bbox_loss
    try:
        yield
    finally:
        del roi_head.bbox_loss


def _bbox_forward_method(roi_head: nn.Module) -> Callable[..., Dict[str, Tensor]]:
    return upstream_attribute(roi_head, '_bbox_forward', 'mmdet', CHECKED, ('x', 'rois'),
                              needed_for="the teacher's box head on the student's RoIs")


def _bbox_loss_method(roi_head: nn.Module) -> Callable[..., dict]:
    return upstream_attribute(roi_head, 'bbox_loss', 'mmdet', CHECKED, ('x', 'sampling_results'),
                              needed_for="recording the student's sampled RoIs")


# wrapper(get_targets, *args, **kwargs) -> the tuple get_targets returns
GetTargetsWrapper = Callable[..., tuple]
GET_TARGETS_PARAMS = ('anchor_list', 'valid_flag_list', 'batch_gt_instances', 'batch_img_metas')


def check_get_targets_api(head: nn.Module) -> None:
    """``head.get_targets`` is there as checked (for a build-time error, before training)."""
    _get_targets_method(head)


@contextlib.contextmanager
def intercept_get_targets(head: nn.Module, wrapper: GetTargetsWrapper) -> Iterator[None]:
    """Inside the context, ``head.loss_by_feat`` runs ``wrapper(get_targets, *args, **kwargs)``
    where it would call its own ``get_targets(*args, **kwargs)``.

    Relies on ``GFLHead`` / ``ATSSHead.loss_by_feat`` calling ``self.get_targets(anchor_list,
    valid_flag_list, batch_gt_instances, batch_img_metas, ...)`` once per step and its returning
    ``(anchors, labels, label_weights, bbox_targets, bbox_weights, avg_factor)``, each a list
    over levels (mmdet 3.3.0): an instance attribute shadows the method for the block only,
    removed on exit, also when the block raises. Callers check that the wrapper ran.
    """
    original = _get_targets_method(head)

    def get_targets(*args, **kwargs) -> tuple:
        return wrapper(original, *args, **kwargs)

    head.get_targets = get_targets
    try:
        yield
    finally:
        del head.get_targets


def _get_targets_method(head: nn.Module) -> Callable[..., tuple]:
    return upstream_attribute(head, 'get_targets', 'mmdet', CHECKED, GET_TARGETS_PARAMS,
                              needed_for="recording the student dense head's assignment")
