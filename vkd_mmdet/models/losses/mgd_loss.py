"""MGD: the student's randomly masked feature must regenerate the teacher's full feature."""
from typing import Mapping, Optional

import torch
import torch.nn as nn
from mmdet.registry import MODELS
from torch import Tensor

from ..projectors import build_projector
from .distill_loss import DistillLoss
from .feature_loss_utils import check_loss_weights, check_same_shape


@MODELS.register_module()
class MGDLoss(DistillLoss):
    """MGD for one pair of FPN levels (Yang et al., "Masked Generative Distillation", ECCV 2022).

    The student feature ``s = f(F_S)`` (after the optional 1x1 ``projector`` ``f``) loses a random
    set of cells, each dropped (all channels zeroed) with probability ``lambda``; a generation
    block ``G`` (3x3 conv, ReLU, 3x3 conv, ``C_t`` wide) predicts the teacher's full feature from
    what is left: ``loss = w * alpha * sum (G(s * M) - t)^2 / N`` with ``M`` the ``(N, 1, H, W)``
    keep mask, the sum over the whole batch and ``N`` the batch size. The paper's settings:
    one-stage alpha 2e-5, lambda 0.65 (the defaults); two-stage alpha 5e-7, lambda 0.45.

    The mask is drawn on the CPU from ``generator`` (the distiller's own, saved in its
    checkpoints, so a resumed run draws exactly what the uninterrupted run drew; None: torch's
    global generator), then moved to the feature's device; it is the same draw on every device.
    With ``ignore_padding`` (default) the squared error is summed over the real cells of
    ``valid_mask``: the teacher's values on mmdet's batch padding are no image to regenerate. The
    mask is drawn over every cell regardless, so the random stream does not depend on padding.

    Args:
        in_channels (int): student channels ``C_s``.
        out_channels (int): teacher channels ``C_t``.
        alpha_mgd (float): ``alpha``. Defaults to 2e-5.
        lambda_mgd (float): ``lambda``, the probability that a cell is dropped, in [0, 1).
            Defaults to 0.65.
        loss_weight (float): ``w``. Defaults to 1.0.
        projector (dict, optional): the map ``f`` of the student to ``C_t``
            (``dict(type='LinearAdapter')``: the release's 1x1 convolution). Defaults to None (no
            map: ``C_s == C_t``).
        ignore_padding (bool): use ``valid_mask`` when given. Defaults to True.
        init_cfg (dict, optional): mmengine init config.

    Shape:
        - student: ``(N, C_s, H, W)``; teacher: ``(N, C_t, H, W)`` (detached);
          valid_mask: ``(N, 1, H, W)`` bool or None.
        - output: scalar.

    Note:
        The generation block (``.generation``) and the projector live in this module: they train
        with the student but are not part of it, so the exported student never holds them.

    Config:
        ``dict(type='MGDLoss', in_channels=256, out_channels=256, alpha_mgd=2e-5,
        lambda_mgd=0.65)``
    """

    extras = ('valid_mask', 'generator')

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 alpha_mgd: float = 2e-5,
                 lambda_mgd: float = 0.65,
                 loss_weight: float = 1.0,
                 projector: Optional[Mapping] = None,
                 ignore_padding: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(loss_weight, init_cfg)
        check_loss_weights('MGDLoss', alpha_mgd=alpha_mgd)
        if isinstance(lambda_mgd, bool) or not isinstance(lambda_mgd, (int, float)) \
                or not 0 <= lambda_mgd < 1:
            raise ValueError(f'MGDLoss: lambda_mgd is the probability that a cell is dropped, '
                             f'expected a number in [0, 1), got {lambda_mgd!r}')
        self.projector = build_projector(projector, in_channels, out_channels, 'MGDLoss')
        self.generation = nn.Sequential(
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1))
        self.alpha_mgd = alpha_mgd
        self.lambda_mgd = lambda_mgd
        self.ignore_padding = ignore_padding

    def keep_mask(self, feature: Tensor,
                  generator: Optional[torch.Generator] = None) -> Tensor:
        """``(N, 1, H, W)`` bool on ``feature``'s device: True where a cell is kept, each dropped
        with probability ``lambda_mgd``, drawn on the CPU from ``generator``."""
        num, _, height, width = feature.shape
        draw = torch.rand((num, 1, height, width), generator=generator)
        return (draw >= self.lambda_mgd).to(feature.device)

    def forward(self, student: Tensor, teacher: Tensor, valid_mask: Optional[Tensor] = None,
                generator: Optional[torch.Generator] = None) -> Tensor:
        student = self.projector(student)
        check_same_shape('MGDLoss', student, teacher)
        keep = self.keep_mask(student, generator)
        squared = (self.generation(student * keep) - teacher).square()
        if self.ignore_padding and valid_mask is not None:
            squared = squared * valid_mask
        return self.loss_weight * self.alpha_mgd * squared.sum() / student.shape[0]

    def extra_repr(self) -> str:
        return f'alpha_mgd={self.alpha_mgd:g}, lambda_mgd={self.lambda_mgd:g}'
