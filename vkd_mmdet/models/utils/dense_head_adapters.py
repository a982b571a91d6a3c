"""Adapters over mmdet's dense heads (GFL, ATSS, RetinaNet, FCOS) that head distillation uses.

Checked with mmdet 3.3.0; the one undocumented call (``get_targets`` inside ``loss_by_feat``) is
intercepted through :mod:`vkd_mmdet.compat.mmdet`. Three things are read from a head:

- the output of its tower conv ``k`` before the activation (``cls_convs[k - 1]`` /
  ``reg_convs[k - 1]``, mmcv ``ConvModule`` s: the norm's output, or the conv's without a norm);
- its own targets of a step, recorded where its ``loss_by_feat`` calls ``self.get_targets``
  (GFL / ATSS layout), never computed a second time;
- its *tail* from tower conv ``k`` on: the activation of conv ``k``, the later convs and the
  predictors, run by the head's own ``forward`` (scales, strides and FCOS's ``norm_on_bbox``
  included) with the first ``k`` convs of each tower stood in for by the given features.
"""
import contextlib
from typing import Callable, Dict, Iterator, List, Sequence, Tuple

import torch.nn as nn
from mmcv.cnn import ConvModule
from mmdet.registry import MODELS
from torch import Tensor

from ...compat.mmdet import check_get_targets_api, intercept_get_targets
from .dense_head_outputs import TOWERS, HeadAssignment, HeadOutputs


def _is(head: nn.Module, *names: str) -> bool:
    """``isinstance(head, <mmdet class>)`` by registry name: importing mmdet.models when
    vkd_mmdet is imported would import mmpretrain too."""
    return isinstance(head, tuple(MODELS.get(name) for name in names))


def head_family(head: nn.Module, key: str) -> str:
    """The head's family: ``'gfl'`` (box distributions), ``'anchor'`` (deltas: RetinaNet,
    ATSS) or ``'point'`` (distances: FCOS); or an error naming ``key`` and the head type."""
    if _is(head, 'GFLHead'):
        return 'gfl'
    if _is(head, 'AnchorHead'):
        return 'anchor'
    if _is(head, 'AnchorFreeHead'):
        return 'point'
    raise ValueError(f'{key}: head distillation supports mmdet dense heads of the GFL, anchor '
                     f'(RetinaNet, ATSS) and anchor-free (FCOS) kinds; got '
                     f'{type(head).__name__}')


def tower_preactivation(head: nn.Module, tower: str, conv: int, key: str) -> nn.Module:
    """The layer whose output is tower ``tower`` (``'cls'`` / ``'reg'``) conv ``conv``
    (1-based) before its activation: the ``ConvModule`` 's norm, or its conv without a norm."""
    convs = getattr(head, f'{tower}_convs', None)
    if not isinstance(convs, nn.ModuleList) or not all(
            isinstance(module, ConvModule) for module in convs):
        raise ValueError(f'{key}: {type(head).__name__} has no {tower}_convs tower of mmcv '
                         'ConvModules')
    if not 1 <= conv <= len(convs):
        raise ValueError(f'{key}: tower_conv={conv}, but {type(head).__name__}.{tower}_convs has '
                         f'{len(convs)} convs (1-based: 1..{len(convs)})')
    module = convs[conv - 1]
    if tuple(module.order) != ('conv', 'norm', 'act'):
        raise ValueError(f'{key}: {type(head).__name__}.{tower}_convs[{conv - 1}] has order '
                         f'{module.order}; expected conv, norm, act')
    return module.norm if module.with_norm else module.conv


@contextlib.contextmanager
def record_assignment(head: nn.Module, record: List[HeadAssignment]) -> Iterator[None]:
    """Inside the context, append to ``record`` the :class:`HeadAssignment` of every
    ``head.get_targets`` call its ``loss_by_feat`` makes (GFL / ATSS layout), the result passed
    on unchanged (:func:`vkd_mmdet.compat.mmdet.intercept_get_targets`)."""

    def recording(get_targets: Callable[..., tuple], *args, **kwargs) -> tuple:
        targets = get_targets(*args, **kwargs)
        anchors, labels, label_weights, bbox_targets, _, avg_factor = targets
        record.append(HeadAssignment(
            priors=list(anchors), labels=list(labels), label_weights=list(label_weights),
            bbox_targets=list(bbox_targets), avg_factor=float(avg_factor),
            strides=tuple(int(s[0]) for s in head.prior_generator.strides),
            num_classes=head.num_classes))
        return targets

    with intercept_get_targets(head, recording):
        yield


def check_assignment_api(head: nn.Module, key: str) -> None:
    """A head whose targets :func:`record_assignment` can read (GFL or ATSS), or an error."""
    if not _is(head, 'GFLHead', 'ATSSHead'):
        raise ValueError(f"{key}: the student's assignment is read from GFL / ATSS heads "
                         f'(GFLHead.get_targets layout); got {type(head).__name__}')
    check_get_targets_api(head)


class _Injected(nn.Module):
    """Stands in for a tower's first ``k`` convs: returns the next given feature (one per level,
    in the head's level order), through the activation of conv ``k``."""

    def __init__(self, features: Sequence[Tensor], activation: nn.Module) -> None:
        super().__init__()
        self.features = iter(features)
        self.activation = activation

    def forward(self, _x: Tensor) -> Tensor:
        return self.activation(next(self.features))


class TeacherDenseHead:
    """The frozen teacher's dense head as the head losses use it (handed over as the
    ``teacher_head`` extra): its family, priors, box decoding and tail from tower conv ``k``.

    Args:
        head (nn.Module): the teacher's ``bbox_head`` (frozen, eval mode).
        family (str): its :func:`head_family`.
    """

    def __init__(self, head: nn.Module, family: str) -> None:
        self.head = head
        self.family = family
        self.strides = tuple(int(s[0]) if isinstance(s, tuple) else int(s)
                             for s in head.prior_generator.strides)
        self.reg_max = getattr(head, 'reg_max', None)
        #: Class channels per prior (sigmoid heads: the number of classes).
        self.cls_channels = head.cls_out_channels

    def priors(self, cls_scores: Sequence[Tensor]) -> List[Tensor]:
        """Per level ``(H_l * W_l * A, 4)`` anchors or ``(H_l * W_l, 2)`` points, the order of
        the head's flattened ``(N, H, W, A * C)`` predictions."""
        return self.head.prior_generator.grid_priors(
            [score.shape[-2:] for score in cls_scores], dtype=cls_scores[0].dtype,
            device=cls_scores[0].device)

    def decode(self, priors: Tensor, bbox_pred: Tensor) -> Tensor:
        """``(..., 4)`` boxes in pixels from ``(..., 4)`` deltas (anchor heads: their
        ``bbox_coder``) or distances (FCOS: ``DistancePointBBoxCoder``; in eval mode its
        distances are in pixels)."""
        if self.family == 'gfl':
            raise ValueError('TeacherDenseHead.decode: GFL predicts box distributions; match '
                             'them as distributions')
        return self.head.bbox_coder.decode(priors, bbox_pred)

    def tail(self, towers: Dict[str, Sequence[Tensor]],
             conv: int) -> Tuple[List[Tensor], List[Tensor]]:
        """The head's ``(cls_scores, bbox_preds)`` with both towers' conv ``conv`` (1-based)
        pre-activations replaced by ``towers['cls']`` / ``towers['reg']`` (per level).

        Runs outside ``inference_mode`` and with gradients: the teacher's weights are frozen
        (``requires_grad=False``), so gradients reach the given features alone. The head's
        towers are swapped for the call only and restored, also when it raises.
        """
        head = self.head
        originals = {tower: head._modules[f'{tower}_convs'] for tower in TOWERS}
        for tower, convs in originals.items():
            stand_in = _Injected(towers[tower], convs[conv - 1].activate
                                 if convs[conv - 1].with_activation else nn.Identity())
            head._modules[f'{tower}_convs'] = nn.ModuleList([stand_in, *convs[conv:]])
        try:
            # The stand-ins ignore their input: the given features serve as the levels' inputs.
            outputs = head(tuple(towers['cls']))
        finally:
            head._modules.update({f'{tower}_convs': convs for tower, convs in originals.items()})
        return list(outputs[0]), list(outputs[1])


def head_outputs(outputs: tuple, towers: Dict[str, List[Tensor]]) -> HeadOutputs:
    """:class:`HeadOutputs` from a dense head's ``forward`` result ``(cls_scores, bbox_preds,
    ...)`` (centerness, when there, is not distilled) and the recorded tower features."""
    return HeadOutputs(list(outputs[0]), list(outputs[1]), towers)
