"""Helpers shared by the distillation losses: the shape check, weight checks and padding-aware
means."""
import math
from typing import Optional

from torch import Tensor

CHANNELS_HINT = 'the student after its projector / adapter: check in_channels / out_channels'


def check_same_shape(loss_name: str,
                     student: Tensor,
                     teacher: Tensor,
                     layout: str = '(N, C, H, W)',
                     kind: str = 'feature',
                     hint: str = CHANNELS_HINT) -> None:
    """Refuse to broadcast: student and teacher must have one shape, with ``layout``'s number of
    dimensions.

    Args:
        loss_name (str): starts the error message.
        student (Tensor): the student side, as the loss compares it (e.g. after its adapter).
        teacher (Tensor): the teacher side.
        layout (str): the expected dimensions, e.g. ``'(N, K)'``; their count is checked.
            Defaults to ``'(N, C, H, W)'`` (an FPN level).
        kind (str): what the tensors are, for the message. Defaults to ``'feature'``.
        hint (str): how to fix a mismatch, for the message. Defaults to ``CHANNELS_HINT``.
    """
    if student.dim() != layout.count(',') + 1 or student.shape != teacher.shape:
        raise ValueError(f'{loss_name}: student {kind} {tuple(student.shape)} and teacher {kind} '
                         f'{tuple(teacher.shape)} must both be {layout} of the same shape '
                         f'({hint})')


def masked_mean(loss: Tensor, valid_mask: Optional[Tensor]) -> Tensor:
    """Mean of an ``(N, C, H, W)`` element-wise loss over channels and the valid pixels.

    ``valid_mask`` is ``(N, 1, H, W)`` bool (True on real image pixels) or None (plain mean).
    """
    if valid_mask is None:
        return loss.mean()
    weight = valid_mask.to(loss.dtype)
    return (loss * weight).sum() / (weight.sum() * loss.shape[1]).clamp(min=1)


def check_loss_weights(loss_name: str, **weights: float) -> None:
    """Refuse a weight that is not a finite number >= 0 (as ``DistillLoss`` does ``loss_weight``):
    a negative one would maximise its term."""
    for key, value in weights.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value) or value < 0:
            raise ValueError(f'{loss_name}: {key} must be a finite number >= 0, got {value!r}')
