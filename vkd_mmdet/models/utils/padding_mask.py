"""Masks of the real image pixels of a padded mmdet batch, downsampled to a feature level."""
import math
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor


def padding_mask(data_samples: Sequence, feature_size: Tuple[int, int],
                 device: torch.device) -> Optional[Tensor]:
    """True where a feature-map cell covers a pixel of the image rather than batch padding.

    mmdet pads every image of a batch to the batch's ``batch_input_shape``; ``img_shape`` is the
    image before padding. A cell of a level of stride ``s`` is real when it starts inside the
    image, so the real extent is ``ceil(img_h * H_l / batch_h)`` rows (likewise for columns).

    Args:
        data_samples (Sequence[DetDataSample]): with ``img_shape`` and ``batch_input_shape``.
        feature_size (tuple[int, int]): ``(H_l, W_l)`` of the level.
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
        batch_h, batch_w = sample.metainfo['batch_input_shape']
        img_h, img_w = sample.metainfo['img_shape'][:2]
        mask[i, :, :math.ceil(img_h * height / batch_h), :math.ceil(img_w * width / batch_w)] = True
    return mask
