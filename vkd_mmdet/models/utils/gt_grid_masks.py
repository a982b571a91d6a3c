"""Ground-truth boxes on a feature grid: which cells each box covers, weighted by its size."""
from typing import Sequence, Tuple

import torch
from torch import Tensor


def gt_cell_weights(gt_bboxes: Sequence[Tensor], feature_size: Tuple[int, int], stride: int,
                    dtype: torch.dtype = torch.float32) -> Tensor:
    """FGD's foreground scale mask: ``1 / (cells of the box)`` on the cells a box covers.

    Cell ``(i, j)`` of a level of stride ``s`` covers the pixels ``[j s, (j + 1) s) x
    [i s, (i + 1) s)`` of the **padded batch** (as :func:`~.padding_mask.padding_mask` counts
    them), and a box ``x1 y1 x2 y2`` covers the cells it overlaps: columns ``floor(x1 / s)`` to
    ``ceil(x2 / s) - 1`` (at least one), likewise for rows, clipped to the grid. A covered cell
    weighs ``1 / (number of cells the box covers)``; a cell under several boxes takes the largest
    weight, i.e. the smallest box's. 0 marks the background.

    The boxes are in pixels of the padded batch, which is what mmdet's heads train on. FGD's
    release divides them by each image's unpadded size and multiplies by the padded feature size
    instead, which stretches the boxes of every image smaller than its batch.

    Args:
        gt_bboxes (Sequence[Tensor]): per image, ``(n_i, 4)`` boxes ``x1 y1 x2 y2`` in pixels.
        feature_size (tuple[int, int]): ``(H, W)`` of the level.
        stride (int): the level's stride ``s`` in pixels.
        dtype (torch.dtype): of the weights. Defaults to float32.

    Returns:
        Tensor: ``(N, 1, H, W)`` weights on the boxes' device.
    """
    height, width = feature_size
    weights = []
    for boxes in gt_bboxes:
        boxes = boxes.detach().to(dtype).reshape(-1, 4)
        rows = _covered(boxes[:, 1], boxes[:, 3], stride, height)
        cols = _covered(boxes[:, 0], boxes[:, 2], stride, width)
        inside = rows[:, :, None] & cols[:, None, :]  # (n, H, W)
        cells = inside.flatten(1).sum(1).clamp(min=1).to(dtype)
        weight = torch.where(inside, 1.0 / cells[:, None, None], boxes.new_zeros(()))
        weights.append(weight.amax(0) if len(boxes) else boxes.new_zeros(height, width))
    return torch.stack(weights)[:, None]


def _covered(low: Tensor, high: Tensor, stride: int, size: int) -> Tensor:
    """``(n, size)`` bool: the cells of one axis that the intervals ``[low, high]`` overlap."""
    first = torch.floor(low / stride)
    # A box thinner than the grid still covers the cell it lies in.
    last = torch.maximum(torch.ceil(high / stride), first + 1)
    index = torch.arange(size, device=low.device, dtype=low.dtype)
    return (index >= first[:, None]) & (index < last[:, None])
