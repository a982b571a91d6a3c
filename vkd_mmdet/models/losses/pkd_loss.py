"""PKD: MSE between per-channel standardised feature maps (a Pearson-correlation loss)."""
from typing import Optional

import torch
import torch.nn as nn
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor

from ..utils import standardize_channels
from .feature_loss_utils import check_same_shape, masked_mean


@MODELS.register_module()
class PKDLoss(BaseModule):
    """PKD for one pair of feature maps (Cao et al., "PKD: General Distillation Framework for
    Object Detectors via Pearson Correlation Coefficient", NeurIPS 2022).

    Both features are standardised per channel to zero mean and unit variance, then
    ``loss = w * mean( (std(s) - std(t))^2 ) / 2``, which is ``w * (1 - Pearson correlation)``
    per channel. By default the statistics are taken per sample over ``(H, W)``;
    ``per_sample=False`` pools them over the batch ``(N, H, W)`` as MMRazor's implementation does.
    With ``ignore_padding`` statistics and mean use the real image pixels of ``valid_mask`` only.
    When ``in_channels != out_channels`` a 1x1 conv adapter maps the student first.

    Args:
        in_channels (int): student channels ``C_s``.
        out_channels (int): teacher channels ``C_t``.
        loss_weight (float): ``w``. Defaults to 1.0 (the paper uses 6-10).
        per_sample (bool): statistics per sample (True) or over the batch. Defaults to True.
        eps (float): added to the variance before the square root. Defaults to 1e-6.
        ignore_padding (bool): use ``valid_mask`` when given. Defaults to True.
        init_cfg (dict, optional): mmengine init config.

    Shape:
        - student: ``(N, C_s, H, W)``; teacher: ``(N, C_t, H, W)`` (detached);
          valid_mask: ``(N, 1, H, W)`` bool or None.
        - output: scalar.

    Config:
        ``dict(type='PKDLoss', in_channels=256, out_channels=256, loss_weight=6.0)``
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 loss_weight: float = 1.0,
                 per_sample: bool = True,
                 eps: float = 1e-6,
                 ignore_padding: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.adapter = (nn.Conv2d(in_channels, out_channels, kernel_size=1)
                        if in_channels != out_channels else nn.Identity())
        self.loss_weight = loss_weight
        self.per_sample = per_sample
        self.eps = eps
        self.ignore_padding = ignore_padding

    def standardize(self, x: Tensor, valid_mask: Optional[Tensor]) -> Tensor:
        if not self.per_sample:
            return standardize_channels(x, valid_mask, self.eps)
        if valid_mask is None:
            mean = x.mean(dim=(2, 3), keepdim=True)
            var = x.var(dim=(2, 3), unbiased=False, keepdim=True)
        else:
            weight = valid_mask.to(x.dtype)
            count = weight.sum(dim=(2, 3), keepdim=True).clamp(min=1)
            mean = (x * weight).sum(dim=(2, 3), keepdim=True) / count
            var = ((x - mean) * weight).square().sum(dim=(2, 3), keepdim=True) / count
        return (x - mean) * torch.rsqrt(var + self.eps)

    def forward(self, student: Tensor, teacher: Tensor,
                valid_mask: Optional[Tensor] = None) -> Tensor:
        student = self.adapter(student)
        check_same_shape('PKDLoss', student, teacher)
        mask = valid_mask if self.ignore_padding else None
        diff = self.standardize(student, mask) - self.standardize(teacher, mask)
        return self.loss_weight * masked_mean(diff.square(), mask) / 2
