"""FitNet feature loss: a free linear adapter on the student and an MSE to the teacher."""
from typing import Mapping, Optional

from mmdet.registry import MODELS
from torch import Tensor

from ..projectors import LINEAR, build_projector
from .distill_loss import DistillLoss
from .feature_loss_utils import check_same_shape, masked_mean


@MODELS.register_module()
class FitNetLoss(DistillLoss):
    """FitNet hint loss for one pair of feature maps (Romero et al., "FitNets: Hints for Thin Deep
    Nets", ICLR 2015), the plain feature-matching baseline beside VkD.

    ``loss = w * mean( (A s - t)^2 )``: a free linear adapter ``A`` (with bias, per pixel) maps
    the student feature ``s`` to the teacher's channels, and the squared error to the teacher
    ``t`` is averaged over channels and pixels. With ``ignore_padding`` the mean runs over the
    real image pixels of ``valid_mask`` only.

    Args:
        in_channels (int): student channels ``C_s``.
        out_channels (int): teacher channels ``C_t``.
        loss_weight (float): ``w``. Defaults to 1.0.
        projector (dict): the map ``A`` (``.projector``). Defaults to
            ``dict(type='LinearAdapter')`` (with bias).
        ignore_padding (bool): use ``valid_mask`` when given. Defaults to True.
        init_cfg (dict, optional): mmengine init config.

    Shape:
        - student: ``(N, C_s, H, W)``; teacher: ``(N, C_t, H, W)`` (detached);
          valid_mask: ``(N, 1, H, W)`` bool or None.
        - output: scalar.

    Config:
        ``dict(type='FitNetLoss', in_channels=256, out_channels=256, loss_weight=1.0)``
    """

    extras = ('valid_mask',)

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 loss_weight: float = 1.0,
                 projector: Mapping = LINEAR,
                 ignore_padding: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(loss_weight, init_cfg)
        self.projector = build_projector(projector, in_channels, out_channels, 'FitNetLoss')
        self.ignore_padding = ignore_padding

    def forward(self, student: Tensor, teacher: Tensor,
                valid_mask: Optional[Tensor] = None) -> Tensor:
        adapted = self.projector(student)
        check_same_shape('FitNetLoss', adapted, teacher)
        mask = valid_mask if self.ignore_padding else None
        return self.loss_weight * masked_mean((adapted - teacher).square(), mask)
