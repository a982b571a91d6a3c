"""SRD feature loss: linear adapter with bias, affine-free BatchNorm, log-sum of |diff|^4."""
from typing import Mapping, Optional

from mmdet.registry import MODELS
from torch import Tensor

from ..projectors import LINEAR, build_projector
from ..utils import standardize_channels
from .distill_loss import DistillLoss
from .feature_loss_utils import check_same_shape

# log() of an exact match would be -inf: the sum is floored here (no gradient below it).
_MIN_SUM = 1e-12


@MODELS.register_module()
class SRDLoss(DistillLoss):
    """SRD for one pair of feature maps (Miles, Mikolajczyk, "Understanding the Role of the
    Projector in Knowledge Distillation", AAAI 2024).

    ``loss = w * log( sum over samples, pixels and channels of |BN(W s + b) - BN(t)|^4 )``: a
    free linear adapter with bias (``.projector``, per pixel: the paper's linear "projector")
    maps the student to the teacher's channels (per pixel), both sides go through an affine-free
    BatchNorm in training mode (statistics of the batch, eps 1e-4, no running statistics), and
    the soft-maximum distance is the log of the summed fourth powers. Applying it per FPN level
    with every pixel as a sample is our adaptation (the paper uses pooled classification
    features). With ``ignore_padding`` the statistics and the sum use the real image pixels of
    ``valid_mask`` only. The log makes the loss scale-free: the number of pixels shifts its value,
    not its gradient direction.

    Args:
        in_channels (int): student channels ``C_s``.
        out_channels (int): teacher channels ``C_t``.
        loss_weight (float): ``w``. Defaults to 2.0 (the paper's ResNet recipe).
        projector (dict): the map ``W s + b`` (``.projector``). Defaults to
            ``dict(type='LinearAdapter')`` (with bias).
        eps (float): BatchNorm eps. Defaults to 1e-4.
        ignore_padding (bool): use ``valid_mask`` when given. Defaults to True.
        sync_stats (bool): BatchNorm statistics over all ranks. Defaults to False.
        init_cfg (dict, optional): mmengine init config.

    Shape:
        - student: ``(N, C_s, H, W)``; teacher: ``(N, C_t, H, W)`` (detached);
          valid_mask: ``(N, 1, H, W)`` bool or None.
        - output: scalar (may be negative for near matches).

    Config:
        ``dict(type='SRDLoss', in_channels=256, out_channels=256, loss_weight=2.0)``
    """

    extras = ('valid_mask',)

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 loss_weight: float = 2.0,
                 projector: Mapping = LINEAR,
                 eps: float = 1e-4,
                 ignore_padding: bool = True,
                 sync_stats: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(loss_weight, init_cfg)
        self.projector = build_projector(projector, in_channels, out_channels, 'SRDLoss')
        self.eps = eps
        self.ignore_padding = ignore_padding
        self.sync_stats = sync_stats

    def forward(self, student: Tensor, teacher: Tensor,
                valid_mask: Optional[Tensor] = None) -> Tensor:
        adapted = self.projector(student)
        check_same_shape('SRDLoss', adapted, teacher)
        mask = valid_mask if self.ignore_padding else None
        student_norm = standardize_channels(adapted, mask, self.eps, self.sync_stats)
        teacher_norm = standardize_channels(teacher, mask, self.eps, self.sync_stats)
        power = (student_norm - teacher_norm).abs().pow(4)
        if mask is not None:
            power = power * mask.to(power.dtype)
        return self.loss_weight * power.sum().clamp(min=_MIN_SUM).log()
