"""Base class of the losses that consume dense-head outputs (LD, CrossKD)."""
from types import MappingProxyType
from typing import ClassVar, List, Mapping, Optional

import torch
import torch.nn as nn
from torch import Tensor

from .distill_loss import DistillLoss


class DenseHeadDistillLoss(DistillLoss):
    """A loss on the dense heads' outputs: ``consumes = 'dense_head'``.

    ``forward(student, teacher, **extras)`` receives both sides'
    :class:`~vkd_mmdet.models.utils.HeadOutputs` (all levels), plus the extras the class lists.
    Beyond :class:`DistillLoss` the declaration has two parts the distiller reads at build time:

    - ``tower_conv`` (int or None, set by the constructor): the 1-based tower conv whose
      pre-activation feature both sides record (``HeadOutputs.towers``); None records none. The
      head losses of one distiller share it.
    - :meth:`check_heads`: refuses a student / teacher head pair the loss cannot compare, before
      training, with an error naming both heads and what differs.

    ``channel_args`` map to the head towers' widths (``feat_channels``); none by default.
    """

    consumes: ClassVar[str] = 'dense_head'
    channel_args: ClassVar[Mapping[str, str]] = MappingProxyType({})
    tower_conv: Optional[int] = None

    def check_heads(self, student_head: nn.Module, teacher_head: nn.Module, key: str) -> None:
        """Raise ``ValueError`` naming ``key`` and both heads when they cannot be paired."""


def flatten_levels(maps: List[Tensor], channels: int) -> Tensor:
    """``(N * sum_l H_l W_l A, channels)`` from per-level ``(N, A * channels, H_l, W_l)`` maps:
    per image, level after level, location-major, the order of mmdet's per-level targets
    (``images_to_levels``) concatenated over levels."""
    num = maps[0].shape[0]
    flat = [level.permute(0, 2, 3, 1).reshape(num, -1, channels) for level in maps]
    return torch.cat(flat, dim=1).reshape(-1, channels)
