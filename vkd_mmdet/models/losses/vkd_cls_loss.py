"""VkD for classification: orthogonal projection of the pooled student feature, LayerNorm on the
teacher's pooled feature only, smooth-L1."""
from typing import Mapping, Optional

import torch.nn.functional as F
from mmpretrain.registry import MODELS
from torch import Tensor

from ..projectors import ORTHOGONAL, build_projector
from .distill_loss import DistillLoss
from .feature_loss_utils import check_same_shape


@MODELS.register_module()
class VkDClsLoss(DistillLoss):
    """VkD on pooled features, the ImageNet setting of Miles, Elezi, Deng, "VkD: Improving
    Knowledge Distillation using Orthogonal Projections", CVPR 2024.

    ``loss = w * smoothL1_beta( P s, LN(t) )``: the pooled student feature ``s`` (for the DeiT
    student the mean of its final patch tokens) is mapped by an orthogonal projector ``P``
    (``C_s -> C_t``, orthonormal columns); the teacher's pooled feature ``t`` is normalised by a
    LayerNorm without affine over its ``C_t`` channels; the projected student is *not* normalised
    (the paper's classification normalisation, unlike the per-channel standardisation of
    detection). Smooth-L1 is mean-reduced over samples and channels.

    Args:
        in_channels (int): student channels ``C_s`` (192 for DeiT-Ti, 384 for DeiT-S).
        out_channels (int): teacher channels ``C_t`` (3024 for RegNetY-160); ``>= C_s``.
        loss_weight (float): ``w``. Defaults to 1.0.
        projector (dict): the map ``P`` (``.projector``). Defaults to
            ``dict(type='OrthogonalProjector')`` (matrix exponential).
        beta (float): smooth-L1 threshold. Defaults to 1.0.
        eps (float): LayerNorm epsilon. Defaults to 1e-5 (``F.layer_norm``'s, as the authors).
        init_cfg (dict, optional): mmengine init config.

    Shape:
        - student: ``(N, C_s)``; teacher: ``(N, C_t)`` (detached).
        - output: scalar.

    Note:
        The projector lives in this module (``.projector``) and is dropped with the distiller at
        export; the distillers' optimizer constructor keeps it out of weight decay.

    Config:
        ``dict(type='VkDClsLoss', in_channels=192, out_channels=3024, loss_weight=1.0)``
    """

    consumes = 'embeddings'
    channel_args = {}
    moved_args = {'orthogonal_map': "projector=dict(type='OrthogonalProjector', "
                                    "orthogonal_map=...)"}

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 loss_weight: float = 1.0,
                 projector: Mapping = ORTHOGONAL,
                 beta: float = 1.0,
                 eps: float = 1e-5,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(loss_weight, init_cfg)
        self.projector = build_projector(projector, in_channels, out_channels, 'VkDClsLoss')
        self.beta = beta
        self.eps = eps

    def forward(self, student: Tensor, teacher: Tensor) -> Tensor:
        if student.dim() != 2 or teacher.dim() != 2:
            raise ValueError(f'VkDClsLoss expects pooled (N, C) features, got student '
                             f'{tuple(student.shape)} and teacher {tuple(teacher.shape)}')
        projected = self.projector(student)
        check_same_shape('VkDClsLoss', projected, teacher, layout='(N, C)')
        target = F.layer_norm(teacher, teacher.shape[-1:], eps=self.eps)
        return self.loss_weight * F.smooth_l1_loss(projected, target, beta=self.beta)
