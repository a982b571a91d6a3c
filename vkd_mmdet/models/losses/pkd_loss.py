"""PKD: MSE between per-channel standardised feature maps (a Pearson-correlation loss)."""
from typing import Mapping, Optional

import torch
from mmdet.registry import MODELS
from torch import Tensor

from ..projectors import build_projector
from ..utils import standardize_channels
from .distill_loss import DistillLoss
from .feature_loss_utils import check_same_shape, masked_mean


@MODELS.register_module()
class PKDLoss(DistillLoss):
    """PKD for one pair of feature maps (Cao et al., "PKD: General Distillation Framework for
    Object Detectors via Pearson Correlation Coefficient", NeurIPS 2022).

    Both features are standardised per channel, then ``loss = w * mean( (z(s) - z(t))^2 ) / 2``,
    i.e. ``w * (1 - Pearson correlation)`` per channel (up to Bessel's factor).

    - ``per_sample=False`` (default, the authors' released loss, MMRazor's ``PKDLoss`` that gave
      the published 40.3 / 40.8 AP): ``z(x) = (x - mean) / (std + eps)``, mean and unbiased
      std of each channel over the whole batch ``(N, H, W)``, ``eps = 1e-6``. Without padding
      (or with ``ignore_padding=False``) it equals MMRazor's ``PKDLoss`` number for number.
    - ``per_sample=True`` (ours): each image's channels standardised over its own ``(H, W)``,
      ``z(x) = (x - mean) / sqrt(var + eps)`` with the biased variance, so the loss is exactly
      ``1 - r`` of each (image, channel). It removes each image's channel offsets and scales,
      which the authors' batch statistics keep as signal.

    With ``ignore_padding`` statistics and mean use the real image pixels of ``valid_mask`` only
    (the authors' code counts mmdet's batch padding too). A ``projector`` (e.g. a free linear
    map) may map the student to ``C_t`` first.

    Args:
        in_channels (int): student channels ``C_s``.
        out_channels (int): teacher channels ``C_t``.
        loss_weight (float): ``w``. Defaults to 1.0 (the paper uses 6-10).
        projector (dict, optional): a map of the student to ``C_t`` first (``.projector``),
            e.g. ``dict(type='LinearAdapter')`` when ``C_s != C_t``. Defaults to None (none:
            ``C_s == C_t``).
        per_sample (bool): statistics per image (ours) or over the batch (the authors').
            Defaults to False.
        eps (float): added to the std (batch statistics) or to the variance (per sample).
            Defaults to 1e-6.
        ignore_padding (bool): use ``valid_mask`` when given. Defaults to True.
        init_cfg (dict, optional): mmengine init config.

    Shape:
        - student: ``(N, C_s, H, W)``; teacher: ``(N, C_t, H, W)`` (detached);
          valid_mask: ``(N, 1, H, W)`` bool or None.
        - output: scalar.

    Config:
        ``dict(type='PKDLoss', in_channels=256, out_channels=256, loss_weight=6.0)``
    """

    extras = ('valid_mask',)

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 loss_weight: float = 1.0,
                 projector: Optional[Mapping] = None,
                 per_sample: bool = False,
                 eps: float = 1e-6,
                 ignore_padding: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(loss_weight, init_cfg)
        self.projector = build_projector(projector, in_channels, out_channels, 'PKDLoss')
        self.per_sample = per_sample
        self.eps = eps
        self.ignore_padding = ignore_padding

    def standardize(self, x: Tensor, valid_mask: Optional[Tensor]) -> Tensor:
        if not self.per_sample:
            return standardize_channels(x, valid_mask, self.eps, unbiased=True, eps_on_std=True)
        return torch.cat([
            standardize_channels(x[i:i + 1], None if valid_mask is None else valid_mask[i:i + 1],
                                 self.eps) for i in range(x.shape[0])])

    def forward(self, student: Tensor, teacher: Tensor,
                valid_mask: Optional[Tensor] = None) -> Tensor:
        student = self.projector(student)
        check_same_shape('PKDLoss', student, teacher)
        mask = valid_mask if self.ignore_padding else None
        diff = self.standardize(student, mask) - self.standardize(teacher, mask)
        return self.loss_weight * masked_mean(diff.square(), mask) / 2
