"""The frozen teacher's fast forward: folded BatchNorm, channels_last, inference mode, autocast.

A teacher never trains, so three costs of a plain ``no_grad`` forward can go:

- **BatchNorm**: in eval mode ``BN(conv(x)) = conv'(x)`` with ``W' = W * g / sqrt(v + eps)``
  and ``b' = (b - m) * g / sqrt(v + eps) + beta`` per output channel: mmcv's ``fuse_conv_bn``
  folds every BN into the convolution before it. Exact up to float32 rounding (measured
  ~1e-6 relative on a Faster R-CNN R101-FPN teacher).
- **Memory layout**: oneDNN (CPU) and cuDNN's tensor-core kernels (fp16 / bf16) run
  convolutions in NHWC; an NCHW model pays a reorder around each one. ``channels_last`` is
  exact (same arithmetic, another summation order).
- **Autograd**: ``torch.inference_mode`` skips the version counters and view tracking that
  ``no_grad`` keeps.

``teacher_precision`` optionally trades exactness for speed: ``'bf16'`` / ``'fp16'`` run the
teacher under autocast, which rounds its features to ~3 significant digits (measured 1.5e-2
relative error on the R101-FPN features, 1.7e-2 with folding and channels_last). The features
leave the teacher as float32: the distillation losses never run in reduced precision.
"""
import copy
import logging
from typing import Callable, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import fuse_conv_bn
from mmengine.logging import print_log
from torch import Tensor

TEACHER_PRECISIONS = {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}
#: A folded teacher whose probe outputs differ more than this (relative, L2) was folded wrong.
FOLD_TOLERANCE = 1e-4


def check_teacher_precision(precision: str, device_type: str = 'cpu') -> torch.dtype:
    """The autocast dtype of ``teacher_precision``, or a clear error.

    ``'fp16'`` needs CUDA: float16 autocast on the CPU is slow and unsupported by many kernels.
    """
    if precision not in TEACHER_PRECISIONS:
        raise ValueError(f'teacher_precision={precision!r}: expected one of '
                         f'{tuple(TEACHER_PRECISIONS)}')
    if precision == 'fp16' and device_type != 'cuda':
        raise ValueError(f"teacher_precision='fp16' needs a CUDA device (the teacher runs on "
                         f"{device_type}); use 'bf16' on the CPU")
    return TEACHER_PRECISIONS[precision]


def teacher_memory_format(device_type: str, precision: str) -> torch.memory_format:
    """The teacher's layout on ``device_type`` (``'cpu'`` / ``'cuda'``) at ``precision``.

    The rule: ``channels_last`` on the CPU at every precision (oneDNN; measured on a folded
    R101-FPN backbone + neck at 2x512x512, one thread: 0.81x the NCHW time in fp32, 0.58x in
    bf16; see ``docs/benchmark.md``), and on CUDA at fp16 / bf16, where cuDNN's tensor-core
    convolutions are NHWC-native (PyTorch's channels_last guidance; not measured here). NCHW
    for fp32 on CUDA, cuDNN's native float32 layout.
    """
    if device_type == 'cpu' or (device_type == 'cuda' and precision != 'fp32'):
        return torch.channels_last
    return torch.contiguous_format


def fold_batchnorms(teacher: nn.Module,
                    probe: Callable[[nn.Module], Sequence[Tensor]]) -> nn.Module:
    """A copy of the eval-mode ``teacher`` with its BatchNorms folded into its convolutions.

    ``fuse_conv_bn`` folds a BN into the convolution *registered* before it, which is not
    always the one applied before it (a pre-activation ``ConvModule``, timm's
    ``BatchNormAct2d`` that also holds an activation). So the copy must give ``probe``'s
    outputs (the teacher's distilled outputs on a fixed input) within ``FOLD_TOLERANCE``;
    otherwise ``teacher`` itself is returned, unfolded, with a logged warning.

    Args:
        teacher (nn.Module): the loaded teacher, in eval mode.
        probe (Callable): ``probe(model) -> tensors``, run under ``inference_mode``.

    Returns:
        nn.Module: the folded copy (frozen: no parameter requires grad), or ``teacher``.
    """
    folded = fuse_conv_bn(copy.deepcopy(teacher)).requires_grad_(False).eval()
    with torch.inference_mode():
        try:
            expected, got = probe(teacher), probe(folded)
        # Whatever stops the check (e.g. a teacher with a fixed input size) keeps the teacher
        # as it is: folding unchecked could change what it teaches.
        except Exception as error:
            print_log(f'teacher BatchNorms left unfolded: the fold check failed ({error!r})',
                      logger='current', level=logging.WARNING)
            return teacher
    for want, have in zip(expected, got):
        error = (have.float() - want.float()).norm() / want.float().norm().clamp_min(1e-12)
        if not error <= FOLD_TOLERANCE:
            print_log(f'teacher BatchNorms left unfolded: mmcv.cnn.fuse_conv_bn changed the '
                      f'teacher outputs by {error.item():.1e} (relative): a BN that does more '
                      'than normalise (e.g. timm BatchNormAct2d) or is not applied right after '
                      'the convolution registered before it', logger='current',
                      level=logging.WARNING)
            return teacher
    return folded


def run_frozen_teacher(teacher: nn.Module, forward: Callable[[Tensor], Sequence[Tensor]],
                       inputs: Tensor, precision: str = 'fp32') -> Tuple[Tensor, ...]:
    """``forward(inputs)`` of the frozen ``teacher``, the fast way; float32 outputs, no grad.

    The teacher (its 4-D weights) and a 4-D ``inputs`` take :func:`teacher_memory_format`; the
    forward runs under ``inference_mode`` and, for ``'bf16'`` / ``'fp16'``, autocast to that
    dtype. ``'fp32'`` switches any surrounding autocast off (e.g. ``AmpOptimWrapper``'s): the
    teacher then runs exactly.

    Args:
        teacher (nn.Module): the frozen teacher (moved to ``inputs``'s device).
        forward (Callable): what to run, e.g. ``teacher.extract_feat``; returns a sequence of
            tensors.
        inputs (Tensor): its input, e.g. the normalised batch ``(N, 3, H, W)``.
        precision (str): ``'fp32'``, ``'bf16'`` or ``'fp16'`` (CUDA only). Defaults to 'fp32'.

    Returns:
        tuple[Tensor]: the outputs as contiguous float32 tensors outside inference mode.
    """
    device_type = inputs.device.type
    dtype = check_teacher_precision(precision, device_type)
    memory_format = teacher_memory_format(device_type, precision)
    if any(param.dim() == 4 and not param.is_contiguous(memory_format=memory_format)
           for param in teacher.parameters()):
        teacher.to(memory_format=memory_format)
    if inputs.dim() == 4:
        inputs = inputs.contiguous(memory_format=memory_format)
    # fp32: autocast switched off; torch < 2.2 refuses float32 as a CPU autocast dtype even then.
    reduced = precision != 'fp32'
    with torch.inference_mode(), torch.autocast(device_type, dtype=dtype if reduced else None,
                                                enabled=reduced):
        outputs = forward(inputs)
    return _for_losses(outputs)


def _for_losses(outputs: Sequence[Tensor]) -> Tuple[Tensor, ...]:
    """Teacher outputs made from ``inference_mode`` tensors into ones the losses can use.

    Inference tensors may not be saved for backward (``F.mse_loss(student, teacher)`` saves its
    target) and ``channels_last`` ones may not be ``view``-ed as ``(N, C, H * W)``: one copy to
    contiguous float32, outside inference mode, gives ordinary tensors (no grad, no history).
    """
    return tuple(out.to(torch.float32, memory_format=torch.contiguous_format, copy=True)
                 for out in outputs)
