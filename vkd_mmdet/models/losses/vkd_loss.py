"""VkD feature loss: orthogonal projection + detection normalisation + smooth-L1."""
from typing import Optional

import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor

from ..projectors import OrthogonalProjector
from ..utils import standardize_channels
from .feature_loss_utils import check_same_shape, masked_mean


@MODELS.register_module()
class VkDLoss(BaseModule):
    """VkD for one pair of feature maps (Miles, Elezi, Deng, "VkD: Improving Knowledge
    Distillation using Orthogonal Projections", CVPR 2024).

    ``loss = w * smoothL1_beta( std(P s), std(t) )``: the student feature ``s`` is projected by an
    orthogonal ``P`` (``C_s -> C_t``, per pixel), then the projected student and the teacher ``t``
    are each standardised per channel over all pixels of the batch (the paper's detection
    normalisation: affine-free BatchNorm statistics), and compared with a mean-reduced smooth-L1.
    With ``ignore_padding`` (default) the statistics and the mean run over the real image pixels
    only; mmdet's batch padding would otherwise enter both (the authors' code includes it).

    Ablations of the paper's two components (``tools/bench_methods.py``): ``orthogonal=False``
    replaces ``P`` by a free bias-free 1x1 conv adapter ``A`` (``.adapter``); ``normalize=False``
    compares ``P s`` with ``t`` as they are (with both: plain feature matching through ``A``).

    Args:
        in_channels (int): student channels ``C_s``.
        out_channels (int): teacher channels ``C_t`` (``>= C_s``).
        loss_weight (float): ``w``. Defaults to 1.0.
        orthogonal_map (str): projector map, see :class:`OrthogonalProjector`.
            Defaults to ``'matrix_exp'``.
        orthogonal (bool): map the student by the orthogonal projector ``P`` (the paper); False
            maps it by a free bias-free 1x1 conv adapter instead (an ablation). Defaults to True.
        normalize (bool): standardise both features per channel (the paper); False is an
            ablation. Defaults to True.
        beta (float): smooth-L1 threshold. Defaults to 1.0.
        eps (float): added to the variance before the square root. Defaults to 1e-5.
        ignore_padding (bool): use ``valid_mask`` when given. Defaults to True.
        sync_stats (bool): normalisation statistics over all ranks. Defaults to False.
        init_cfg (dict, optional): mmengine init config.

    Shape:
        - student: ``(N, C_s, H, W)``; teacher: ``(N, C_t, H, W)`` (detached);
          valid_mask: ``(N, 1, H, W)`` bool or None.
        - output: scalar.

    Note:
        The projector lives in this module (``.projector``); configs keep it out of weight decay
        with ``paramwise_cfg=dict(custom_keys={'projector.raw_weight': dict(decay_mult=0.)})``.
        The ablation's adapter is ``.adapter`` (its weight: ``adapter.weight``).

    Config:
        ``dict(type='VkDLoss', in_channels=256, out_channels=256, loss_weight=1.0)``
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 loss_weight: float = 1.0,
                 orthogonal_map: str = 'matrix_exp',
                 orthogonal: bool = True,
                 normalize: bool = True,
                 beta: float = 1.0,
                 eps: float = 1e-5,
                 ignore_padding: bool = True,
                 sync_stats: bool = False,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not isinstance(orthogonal, bool):  # e.g. a string would silently read as True
            raise TypeError(f'VkDLoss: orthogonal must be True or False, got {orthogonal!r}')
        if orthogonal:
            self.projector = OrthogonalProjector(in_channels, out_channels, orthogonal_map)
        else:
            self.adapter = nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False)
        self.orthogonal = orthogonal
        self.normalize = normalize
        self.loss_weight = loss_weight
        self.beta = beta
        self.eps = eps
        self.ignore_padding = ignore_padding
        self.sync_stats = sync_stats

    def forward(self, student: Tensor, teacher: Tensor,
                valid_mask: Optional[Tensor] = None) -> Tensor:
        projected = (self.projector if self.orthogonal else self.adapter)(student)
        check_same_shape('VkDLoss', projected, teacher)
        mask = valid_mask if self.ignore_padding else None
        if self.normalize:
            projected = standardize_channels(projected, mask, self.eps, self.sync_stats)
            teacher = standardize_channels(teacher, mask, self.eps, self.sync_stats)
        loss = F.smooth_l1_loss(projected, teacher, beta=self.beta, reduction='none')
        return self.loss_weight * masked_mean(loss, mask)
