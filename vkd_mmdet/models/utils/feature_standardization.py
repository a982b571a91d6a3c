"""Per-channel standardisation of feature maps over the real (unpadded) pixels of a batch."""
from typing import Optional, Tuple

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_nn
from torch import Tensor


def _sum_over_batch(x: Tensor, sync: bool) -> Tensor:
    """Sum over dims (0, 2, 3) -> ``(C,)``, and over all ranks when ``sync`` (autograd-aware)."""
    total = x.sum(dim=(0, 2, 3))
    if sync and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        total = dist_nn.all_reduce(total)
    return total


def masked_channel_stats(x: Tensor,
                         valid_mask: Optional[Tensor] = None,
                         sync: bool = False) -> Tuple[Tensor, Tensor]:
    """Mean and biased variance of each channel over the valid pixels of the whole batch.

    Two passes (mean, then the mean squared deviation) rather than ``E[x^2] - E[x]^2``, which
    cancels catastrophically for features with a large mean.

    Args:
        x (Tensor): ``(N, C, H, W)``.
        valid_mask (Tensor, optional): ``(N, 1, H, W)`` bool, True on real image pixels. None
            counts every pixel (padding included, as in the VkD authors' code).
        sync (bool): reduce the statistics over all ranks (SyncBN-style). Defaults to False.

    Returns:
        tuple[Tensor, Tensor]: ``(C,)`` mean and ``(C,)`` variance.
    """
    if valid_mask is None:
        valid_mask = x.new_ones((x.shape[0], 1, *x.shape[2:]), dtype=torch.bool)
    weight = valid_mask.to(x.dtype)
    count = _sum_over_batch(weight, sync).clamp(min=1)
    mean = _sum_over_batch(x * weight, sync) / count
    centred = (x - mean[None, :, None, None]) * weight
    var = _sum_over_batch(centred.square(), sync) / count
    return mean, var


def standardize_channels(x: Tensor,
                         valid_mask: Optional[Tensor] = None,
                         eps: float = 1e-5,
                         sync: bool = False) -> Tensor:
    """``(x - mean_c) / sqrt(var_c + eps)`` per channel, statistics from the valid pixels.

    BatchNorm in training mode without affine and without running statistics; ``eps`` keeps a
    constant channel finite (the released VkD code divides by a bare std and gives NaN there).

    Shape:
        ``x``: ``(N, C, H, W)``; ``valid_mask``: ``(N, 1, H, W)`` or None; output as ``x``.
    """
    mean, var = masked_channel_stats(x, valid_mask, sync)
    return (x - mean[None, :, None, None]) * torch.rsqrt(var + eps)[None, :, None, None]
