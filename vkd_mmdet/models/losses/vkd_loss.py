"""VkD feature loss: orthogonal projection + detection normalisation + smooth-L1."""
from typing import Mapping, Optional

import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor

from ..projectors import ORTHOGONAL, build_projector
from ..utils import standardize_channels
from .distill_loss import DistillLoss
from .feature_loss_utils import check_same_shape, masked_mean


@MODELS.register_module()
class VkDLoss(DistillLoss):
    """VkD for one pair of feature maps (Miles, Elezi, Deng, "VkD: Improving Knowledge
    Distillation using Orthogonal Projections", CVPR 2024).

    ``loss = w * smoothL1_beta( std(P s), std(t) )``: the student feature ``s`` is projected by an
    orthogonal ``P`` (``C_s -> C_t``, per pixel), then the projected student and the teacher ``t``
    are each standardised per channel over all pixels of the batch (the paper's detection
    normalisation: affine-free BatchNorm statistics), and compared with a mean-reduced smooth-L1.
    With ``ignore_padding`` (default) the statistics and the mean run over the real image pixels
    only; mmdet's batch padding would otherwise enter both (the authors' code includes it).

    Ablations of the paper's two components (``tools/bench_methods.py``) are config swaps:
    ``projector=dict(type='LinearAdapter', bias=False)`` replaces ``P`` by a free map ``A``;
    ``normalize=False`` compares ``P s`` with ``t`` as they are (with both: plain feature
    matching through ``A``).

    Args:
        in_channels (int): student channels ``C_s``.
        out_channels (int): teacher channels ``C_t`` (``>= C_s``).
        loss_weight (float): ``w``. Defaults to 1.0.
        projector (dict): the map ``P`` (``.projector``), a registered channel map built with
            the widths: ``dict(type='OrthogonalProjector', orthogonal_map='matrix_exp')`` (the
            paper; ``'cayley'`` / ``'householder'`` maps too), or a free
            ``dict(type='LinearAdapter', bias=False)`` (ablation). Defaults to the orthogonal
            projector with the matrix exponential.
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
        The projector lives in this module (``.projector``); the distillers' optimizer
        constructor (``DistillOptimWrapperConstructor``) keeps orthogonal projectors out of
        weight decay, a free ``LinearAdapter`` keeps the optimizer's decay.

    Config:
        ``dict(type='VkDLoss', in_channels=256, out_channels=256, loss_weight=1.0)``
    """

    extras = ('valid_mask',)
    moved_args = {
        'orthogonal_map': "projector=dict(type='OrthogonalProjector', orthogonal_map=...)",
        'orthogonal': "projector=dict(type='LinearAdapter', bias=False) for the free map",
    }

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 loss_weight: float = 1.0,
                 projector: Mapping = ORTHOGONAL,
                 normalize: bool = True,
                 beta: float = 1.0,
                 eps: float = 1e-5,
                 ignore_padding: bool = True,
                 sync_stats: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(loss_weight, init_cfg)
        self.projector = build_projector(projector, in_channels, out_channels, 'VkDLoss')
        self.normalize = normalize
        self.beta = beta
        self.eps = eps
        self.ignore_padding = ignore_padding
        self.sync_stats = sync_stats

    def forward(self, student: Tensor, teacher: Tensor,
                valid_mask: Optional[Tensor] = None) -> Tensor:
        projected = self.projector(student)
        check_same_shape('VkDLoss', projected, teacher)
        mask = valid_mask if self.ignore_padding else None
        if self.normalize:
            projected = standardize_channels(projected, mask, self.eps, self.sync_stats)
            teacher = standardize_channels(teacher, mask, self.eps, self.sync_stats)
        loss = F.smooth_l1_loss(projected, teacher, beta=self.beta, reduction='none')
        return self.loss_weight * masked_mean(loss, mask)
