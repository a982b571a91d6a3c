"""Mixed precision on the CPU, where mmengine's AmpOptimWrapper refuses to start."""
from contextlib import contextmanager

import torch
import torch.nn as nn
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose forward runs under CPU bfloat16 autocast (``tools/train.py --amp``
    on a machine without CUDA).

    bfloat16 keeps float32's exponent range, so no loss scaling is needed: backward and step are
    those of the plain ``OptimWrapper``; parameters and gradients stay float32. On a GPU use
    mmengine's ``AmpOptimWrapper`` (what ``--amp`` picks there).

    Note:
        mmcv 2.1.0's CPU kernels of ``nms`` and ``RoIAlign`` have no bfloat16 version: two-stage
        detectors (Faster R-CNN) fail under it on the CPU; one-stage ones (RetinaNet, FCOS, GFL)
        train.

    Config:
        .. code-block:: python

            optim_wrapper = dict(type='CPUAmpOptimWrapper', optimizer=dict(type='SGD', lr=0.01))
    """

    @contextmanager
    def optim_context(self, model: nn.Module):
        with super().optim_context(model), torch.autocast('cpu', dtype=torch.bfloat16):
            yield
