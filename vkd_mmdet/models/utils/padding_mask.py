"""Masks of the real image pixels of a padded mmdet batch, downsampled to a feature level."""
import math
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor


def padding_mask(data_samples: Sequence, feature_size: Tuple[int, int], stride: int,
                 device: torch.device) -> Optional[Tensor]:
    """True where a feature-map cell covers a pixel of the image rather than batch padding.

    mmdet pads every image of a batch to the batch's ``batch_input_shape``; ``img_shape`` is the
    image before padding. Cell ``i`` of a level of stride ``s`` starts at pixel ``i * s``; it is
    real when that pixel is inside the image, so the real extent is ``ceil(img_h / s)`` rows
    (likewise for columns). The level's own stride is needed: the top levels (P6, P7: stride-2
    convolutions or poolings of odd sizes) are not ``batch_h / s`` cells high, and a ratio of
    sizes would mark padded cells real (a 50 px image in a 96 px batch: ``ceil(50 * 2 / 96) = 2``
    P6 rows, where the second starts at pixel 64).

    Args:
        data_samples (Sequence[DetDataSample]): with ``img_shape`` and ``batch_input_shape``.
        feature_size (tuple[int, int]): ``(H_l, W_l)`` of the level.
        stride (int): the level's stride ``s`` in input pixels (``2^l`` at ``P_l``).
        device (torch.device): where to build the mask.

    Returns:
        Tensor | None: ``(N, 1, H_l, W_l)`` bool; None when no image of the batch is padded
        (every cell is real), which lets the losses take their unmasked fast paths.
    """
    if all(tuple(sample.metainfo['img_shape'][:2]) == tuple(sample.metainfo['batch_input_shape'])
           for sample in data_samples):
        return None
    height, width = feature_size
    mask = torch.zeros((len(data_samples), 1, height, width), dtype=torch.bool, device=device)
    for i, sample in enumerate(data_samples):
        img_h, img_w = sample.metainfo['img_shape'][:2]
        mask[i, :, :math.ceil(img_h / stride), :math.ceil(img_w / stride)] = True
    return mask
