"""Per-channel standardisation of feature maps over the real (unpadded) pixels of a batch."""
from typing import Optional, Tuple

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_nn
import torch.nn.functional as F
from torch import Tensor


def _reduce(total: Tensor, sync: bool) -> Tensor:
    """Sum ``total`` over all ranks when ``sync`` (autograd-aware), else pass it through."""
    if sync and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return dist_nn.all_reduce(total)
    return total


def _channel_sum(x: Tensor, weight: Optional[Tensor], sync: bool) -> Tensor:
    """``(C,)`` sum over batch and pixels, each pixel weighted by ``weight`` ``(N, H, W)``.

    The einsum contracts without materialising ``x * weight``.
    """
    total = x.sum(dim=(0, 2, 3)) if weight is None else torch.einsum('nchw,nhw->c', x, weight)
    return _reduce(total, sync)


def _centred_and_var(x: Tensor, valid_mask: Optional[Tensor], sync: bool,
                     unbiased: bool = False) -> Tuple[Tensor, Tensor, Tensor]:
    weight = None if valid_mask is None else valid_mask[:, 0].to(x.dtype)
    pixels = x.new_tensor(x.numel() // x.shape[1]) if weight is None else weight.sum()
    count = _reduce(pixels, sync).clamp(min=1)
    mean = _channel_sum(x, weight, sync) / count
    # Two passes (mean, then the mean squared deviation) rather than E[x^2] - E[x]^2, which
    # cancels catastrophically for features with a large mean.
    centred = x - mean[None, :, None, None]
    dof = (count - 1).clamp(min=1) if unbiased else count
    var = _channel_sum(centred.square(), weight, sync) / dof
    return mean, centred, var


def masked_channel_stats(x: Tensor,
                         valid_mask: Optional[Tensor] = None,
                         sync: bool = False) -> Tuple[Tensor, Tensor]:
    """Mean and biased variance of each channel over the valid pixels of the whole batch.

    Args:
        x (Tensor): ``(N, C, H, W)``.
        valid_mask (Tensor, optional): ``(N, 1, H, W)`` bool, True on real image pixels. None
            counts every pixel (padding included, as in the VkD authors' code).
        sync (bool): reduce the statistics over all ranks (SyncBN-style). Defaults to False.

    Returns:
        tuple[Tensor, Tensor]: ``(C,)`` mean and ``(C,)`` variance.
    """
    mean, _, var = _centred_and_var(x, valid_mask, sync)
    return mean, var


def standardize_channels(x: Tensor,
                         valid_mask: Optional[Tensor] = None,
                         eps: float = 1e-5,
                         sync: bool = False,
                         unbiased: bool = False,
                         eps_on_std: bool = False) -> Tensor:
    """``(x - mean_c) / sqrt(var_c + eps)`` per channel, statistics from the valid pixels.

    BatchNorm in training mode without affine and without running statistics; ``eps`` keeps a
    constant channel finite (the released VkD code divides by a bare std and gives NaN there).
    Without a mask (and without ``sync``) it is exactly ``F.batch_norm``, whose fused kernel is
    used; with one, the masked statistics cost two reductions and three full-size temporaries.
    ``unbiased=True, eps_on_std=True`` give ``(x - mean_c) / (std_c + eps)`` with Bessel's
    correction instead, the standardisation of MMRazor's ``PKDLoss.norm`` (PKD's release).

    Args:
        x (Tensor): features.
        valid_mask (Tensor, optional): True on real image pixels; None counts every pixel.
        eps (float): added to the variance (or to the std with ``eps_on_std``).
            Defaults to 1e-5.
        sync (bool): statistics over all ranks. Defaults to False.
        unbiased (bool): divide the squared deviations by ``count - 1``. Defaults to False.
        eps_on_std (bool): ``eps`` is added to the std rather than to the variance.
            Defaults to False.

    Shape:
        ``x``: ``(N, C, H, W)``; ``valid_mask``: ``(N, 1, H, W)`` or None; output as ``x``.
    """
    batch_norm = not (sync or unbiased or eps_on_std)
    # batch_norm refuses eps = 0 in training, and a single value per channel (a 1 x 1 level of
    # one image), which standardises to 0 here as it does on the masked path.
    if valid_mask is None and batch_norm and eps > 0 and x.numel() > x.size(1):
        return F.batch_norm(x, None, None, training=True, eps=eps)
    _, centred, var = _centred_and_var(x, valid_mask, sync, unbiased)
    if eps_on_std:
        # The clamp only keeps sqrt's gradient finite on a constant channel (var = 0).
        scale = 1 / (var.clamp(min=torch.finfo(var.dtype).tiny).sqrt() + eps)
    else:
        scale = torch.rsqrt(var + eps)
    return centred * scale[None, :, None, None]
