"""Channel-wise distillation: per-channel spatial softmax, KL from teacher to student."""
from typing import Mapping, Optional

import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor

from ..projectors import build_projector
from .distill_loss import DistillLoss
from .feature_loss_utils import check_same_shape


@MODELS.register_module()
class CWDLoss(DistillLoss):
    """Channel-wise distillation for one pair of feature maps (Shu et al., "Channel-wise Knowledge
    Distillation for Dense Prediction", ICCV 2021), with MMRazor's ``ChannelWiseDivergence``
    reduction.

    Each channel's map is turned into a distribution over its ``H*W`` pixels by a softmax at
    temperature ``tau``; ``loss = w * tau^2 * mean over (sample, channel) of KL(p_t || p_s)``
    (a sum over pixels, then a mean over samples and channels). With ``ignore_padding`` the softmax
    and the KL run over the real image pixels of ``valid_mask`` only (MMRazor includes padding).
    A ``projector`` (e.g. a free linear map) may map the student to ``C_t`` first.

    Args:
        in_channels (int): student channels ``C_s``.
        out_channels (int): teacher channels ``C_t``.
        tau (float): softmax temperature. Defaults to 1.0.
        loss_weight (float): ``w``. Defaults to 1.0 (MMRazor uses 10 on GFL).
        projector (dict, optional): a map of the student to ``C_t`` first (``.projector``),
            e.g. ``dict(type='LinearAdapter')`` when ``C_s != C_t``. Defaults to None (none:
            ``C_s == C_t``).
        ignore_padding (bool): use ``valid_mask`` when given. Defaults to True.
        init_cfg (dict, optional): mmengine init config.

    Shape:
        - student: ``(N, C_s, H, W)``; teacher: ``(N, C_t, H, W)`` (detached);
          valid_mask: ``(N, 1, H, W)`` bool or None.
        - output: scalar.

    Config:
        ``dict(type='CWDLoss', in_channels=256, out_channels=256, tau=1.0, loss_weight=10.0)``
    """

    extras = ('valid_mask',)

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 tau: float = 1.0,
                 loss_weight: float = 1.0,
                 projector: Optional[Mapping] = None,
                 ignore_padding: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(loss_weight, init_cfg)
        if tau <= 0:
            raise ValueError(f'CWDLoss: tau must be > 0, got {tau}')
        self.projector = build_projector(projector, in_channels, out_channels, 'CWDLoss')
        self.tau = tau
        self.ignore_padding = ignore_padding

    def forward(self, student: Tensor, teacher: Tensor,
                valid_mask: Optional[Tensor] = None) -> Tensor:
        student = self.projector(student)
        check_same_shape('CWDLoss', student, teacher)
        student_logits = student.flatten(2) / self.tau
        teacher_logits = teacher.flatten(2) / self.tau
        valid = None
        if self.ignore_padding and valid_mask is not None:
            valid = valid_mask.flatten(2).expand_as(student_logits)
            student_logits = student_logits.masked_fill(~valid, float('-inf'))
            teacher_logits = teacher_logits.masked_fill(~valid, float('-inf'))
        teacher_log_prob = F.log_softmax(teacher_logits, dim=2)
        student_log_prob = F.log_softmax(student_logits, dim=2)
        kl = teacher_log_prob.exp() * (teacher_log_prob - student_log_prob)
        if valid is not None:
            # Padded cells have probability 0 on both sides: their -inf - -inf is no term at all.
            kl = torch.where(valid, kl, kl.new_zeros(()))
        return self.loss_weight * self.tau**2 * kl.sum(dim=2).mean()
