"""mmpretrain compatibility: the private parts of mmpretrain that the classifier distiller uses.

Checked with mmpretrain 1.2.0 (both stacks of requirements/pinned*.txt). Each adapter checks its
API on every call (:func:`~.upstream_api.upstream_attribute`): a removed or re-signed attribute is
an :class:`~.upstream_api.UpstreamAPIError` naming mmpretrain and the attribute.
tests/test_compat/test_mmpretrain.py compares each adapter with the public path, for a change of
meaning.

Only ``ClassifierDistiller`` imports this module, and it never imports mmpretrain itself (it reads
the mmpretrain objects it is handed): ``import vkd_mmdet`` never imports mmpretrain.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch.nn as nn
from torch import Tensor

from .upstream_api import upstream_attribute

#: The mmpretrain versions the adapters below were checked with.
CHECKED = '1.2.0'


def cls_head_loss(head: nn.Module, cls_score: Tensor, data_samples: List) -> Dict[str, Tensor]:
    """The head's own loss dict on logits already computed.

    Relies on ``ClsHead._get_loss(cls_score, data_samples)`` (private; mmpretrain 1.2.0): the
    public ``head.loss(feats, data_samples)`` runs the head's forward first, and for a
    ``DeiTClsHead`` that forward averages the class and distillation heads, while the class loss
    must see the class head's logits alone.

    Args:
        head (ClsHead): the classifier's head (its ``loss_module``, ``cal_acc``, ``topk``).
        cls_score (Tensor): ``(N, K)`` logits.
        data_samples (list[DataSample]): with ``gt_label`` or, after Mixup / CutMix,
            ``gt_score``.

    Returns:
        dict[str, Tensor]: ``loss`` and, with ``cal_acc``, ``accuracy_top-<k>``.
    """
    get_loss = upstream_attribute(head, '_get_loss', 'mmpretrain', CHECKED,
                                  ('cls_score', 'data_samples'),
                                  needed_for="the class head's loss on its own logits")
    return get_loss(cls_score, data_samples)


def deit_head_logits(head: nn.Module, feats: Sequence) -> Tuple[Tensor, Tensor]:
    """``(class logits (N, K), distillation logits (N, K))`` of a ``DeiTClsHead``.

    Relies on the head's two linear layers ``layers.head`` and ``layers.head_dist`` (internal
    module names; mmpretrain 1.2.0), applied to the public ``pre_logits(feats)``: the public
    forward returns only their mean, and distillation trains the two heads on different targets.

    Args:
        head (DeiTClsHead): the head.
        feats (Sequence): backbone / neck outputs whose last entry holds the
            ``(cls token, distillation token)``, each ``(N, C)``, after optional patch tokens.
    """
    purpose = "DeiT's class and distillation logits apart"
    class_head = upstream_attribute(head, 'layers.head', 'mmpretrain', CHECKED,
                                    needed_for=purpose)
    dist_head = upstream_attribute(head, 'layers.head_dist', 'mmpretrain', CHECKED,
                                   needed_for=purpose)
    cls_token, dist_token = head.pre_logits(feats)
    return class_head(cls_token), dist_head(dist_token)


def preprocessor_normalization(
        preprocessor: nn.Module) -> Tuple[Optional[Tensor], Optional[Tensor], bool]:
    """``(mean (C, 1, 1), std (C, 1, 1), to_rgb)`` of a ``ClsDataPreprocessor``; mean and std
    are None when it does not normalise.

    Relies on ``ClsDataPreprocessor._enable_normalize`` (private; mmpretrain 1.2.0), the flag its
    own forward reads; ``mean`` / ``std`` (buffers) and ``to_rgb`` are its public attributes.
    """
    enabled = upstream_attribute(preprocessor, '_enable_normalize', 'mmpretrain', CHECKED,
                                 needed_for="re-normalising the student's batch for the teacher")
    to_rgb = bool(preprocessor.to_rgb)
    if not enabled:
        return None, None, to_rgb
    return preprocessor.mean, preprocessor.std, to_rgb
