"""What a detector's neck gives: the stride and width of every output level, measured once."""
from typing import List, NamedTuple, Optional, Sequence

import torch
import torch.nn as nn

# Dummy square sizes tried in turn. A size must be a multiple of the largest stride, with every
# level at least 2 px (a 1 px level could have any stride >= the size): 128 covers strides up to
# 64 (DINO's P6, Faster R-CNN's P6), 256 RetinaNet's / GFL's P7 (stride 128).
PROBE_SIZES = (128, 256, 512)


class NeckLevel(NamedTuple):
    """One output of a detector's ``extract_feat``: its stride (px) and its channels."""
    stride: int
    channels: int


def probe_neck_levels(detector: nn.Module, side: str,
                      sizes: Sequence[int] = PROBE_SIZES) -> List[NeckLevel]:
    """Run backbone + neck once on a dummy batch and read each output level's stride and width.

    The dummy is one black ``size x size`` image passed through the detector's own
    ``data_preprocessor`` (its padding included; no batch augments), then ``extract_feat``, in
    eval mode under ``no_grad``: BatchNorm statistics do not move and every module's ``training``
    flag is restored afterwards. A level's stride is ``batch size / level size``, which is exact
    when the batch is a multiple of the stride; the next size of ``sizes`` is tried while a level
    is 1 px or not an exact divisor. Nothing here draws random numbers; callers that must not move
    torch's generator still wrap the call (``isolated_rng``).

    Swin pads every stage to a multiple of its window (12 for Swin-L) and crops back, so the
    shapes are exact at any size; at 128 px the padded windows set its cost. Measured on this
    project's 2-core CPU (torch 2.14, 2 threads), DINO Swin-L 5-scale (backbone + ChannelMapper)
    at 128 px: 0.3-0.6 s wall, 0.65 s CPU time (3-6 s wall while other jobs share the cores);
    at 256 px 1.3 s, at 384 px 2.2 s. R101 FPN and RTMDet-l: 0.1-0.4 s.

    Args:
        detector (nn.Module): an mmdet detector with ``data_preprocessor`` and ``extract_feat``.
        side (str): ``'student'`` or ``'teacher'``, for error messages.
        sizes (Sequence[int]): square dummy sizes to try, smallest first.

    Returns:
        list[NeckLevel]: one per output of ``extract_feat``, in its order.

    Raises:
        RuntimeError: the forward pass fails (naming ``side`` and the size), gives no
            ``(N, C, H, W)`` levels, or no size of ``sizes`` gives exact strides.
    """
    modes = {module: module.training for module in detector.modules()}
    parameter = next(detector.parameters(), None)
    device = parameter.device if parameter is not None else torch.device('cpu')
    detector.eval()
    try:
        for size in sizes:
            shapes = _level_shapes(detector, side, size, device)
            batch_shape = shapes.pop(0)
            levels = _exact_levels(batch_shape, shapes)
            if levels is not None:
                return levels
    finally:
        for module, mode in modes.items():
            module.training = mode
    raise RuntimeError(
        f'DetectionDistiller: the {side} neck levels {shapes} on a {batch_shape[0]}x'
        f'{batch_shape[1]} dummy batch (largest size tried) give no exact strides: a level is '
        '1 px or its size does not divide the input')


def _level_shapes(detector: nn.Module, side: str, size: int,
                  device: torch.device) -> List[tuple]:
    """``[(batch H, W), (C, H, W) of each level ...]`` of one dummy forward pass."""
    data = dict(inputs=[torch.zeros(3, size, size, dtype=torch.uint8, device=device)])
    try:
        with torch.no_grad():
            inputs = detector.data_preprocessor(data, False)['inputs']
            feats = detector.extract_feat(inputs)
    except Exception as error:
        raise RuntimeError(
            f'DetectionDistiller: probing the {side} backbone + neck on a dummy {size}x{size} '
            f'batch failed ({type(error).__name__}: {error}); the distiller measures each neck '
            "level's stride and channels this way at build time") from error
    if not isinstance(feats, (tuple, list)) or not feats or \
            not all(isinstance(feat, torch.Tensor) and feat.dim() == 4 for feat in feats):
        raise RuntimeError(f'DetectionDistiller: the {side} extract_feat gives '
                           f'{type(feats).__name__}, expected a tuple of (N, C, H, W) levels')
    return [tuple(inputs.shape[-2:])] + [tuple(feat.shape[1:]) for feat in feats]


def _exact_levels(batch_shape: tuple, shapes: Sequence[tuple]) -> Optional[List[NeckLevel]]:
    levels = []
    for channels, height, width in shapes:
        stride = batch_shape[0] // height
        if height < 2 or width < 2 or stride * height != batch_shape[0] \
                or stride * width != batch_shape[1]:
            return None
        levels.append(NeckLevel(stride, channels))
    return levels
