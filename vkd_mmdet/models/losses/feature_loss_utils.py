"""Helpers shared by the FPN-level feature losses: shape checks and padding-aware means."""
from typing import Optional

from torch import Tensor


def check_same_shape(loss_name: str, student: Tensor, teacher: Tensor) -> None:
    """Refuse to broadcast: the (adapted) student and the teacher must have one shape."""
    if student.dim() != 4 or student.shape != teacher.shape:
        raise ValueError(f'{loss_name}: (adapted) student feature {tuple(student.shape)} and '
                         f'teacher feature {tuple(teacher.shape)} must both be (N, C, H, W) of '
                         'the same shape; check in_channels / out_channels')


def masked_mean(loss: Tensor, valid_mask: Optional[Tensor]) -> Tensor:
    """Mean of an ``(N, C, H, W)`` element-wise loss over channels and the valid pixels.

    ``valid_mask`` is ``(N, 1, H, W)`` bool (True on real image pixels) or None (plain mean).
    """
    if valid_mask is None:
        return loss.mean()
    weight = valid_mask.to(loss.dtype)
    return (loss * weight).sum() / (weight.sum() * loss.shape[1]).clamp(min=1)
