"""What every distiller shares: a trainable student and a frozen, unsaved teacher."""
import contextlib
import copy
from typing import Callable, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.model import BaseDataPreprocessor, BaseModel
from torch import Tensor

from ...utils.checkpoint import UnsafeCheckpointError
from ...utils.checkpoint_mismatch import refuse_mismatched_state_dict
from ...utils.teacher_checkpoint import load_teacher_checkpoint
from .frozen_teacher import check_teacher_precision, fold_batchnorms, run_frozen_teacher
from .projector_decay_guard import guard_projector_decay


class BaseDistiller(BaseModel):
    """A student trained under a frozen teacher.

    The teacher is kept out of ``_modules`` (a plain attribute, as mmdet's KD detector does), so it
    is absent from ``parameters()`` (hence from the optimizer and from DDP's gradient buckets),
    from ``state_dict()`` (hence from saved checkpoints: on resume it is reloaded from
    ``teacher_ckpt``) and from ``init_weights()``. ``_apply`` forwards ``to`` / ``cuda`` / ``cpu``
    / ``half`` / ``to(dtype)`` to it, and ``train()`` leaves it in eval mode (BatchNorm keeps its
    running statistics).

    Once its checkpoint is loaded (at every build, so again on ``--resume``), the teacher's
    BatchNorms are folded into its convolutions (mmcv's ``fuse_conv_bn``, checked on a probe
    input: see :func:`~.frozen_teacher.fold_batchnorms`), and :meth:`teacher_forward` runs it
    in ``channels_last`` where faster, under ``inference_mode``, at ``teacher_precision``.

    The distiller's own ``data_preprocessor`` only moves the raw batch to the device: student and
    teacher each normalise it with their own preprocessor (e.g. caffe-style teacher, pytorch-style
    student).

    Args:
        student (nn.Module): the built student.
        teacher (nn.Module): the built teacher.
        teacher_ckpt (str): path or URL of the teacher's weights (a plain or mmengine checkpoint).
        teacher_ckpt_strict (bool): refuse missing / unexpected teacher keys. Defaults to True.
        teacher_ckpt_trusted (bool): load the teacher with ``weights_only=False`` (runs arbitrary
            pickled code: only for files you trust). Defaults to False.
        init_cfg (dict, optional): mmengine init config.
        load_strict (bool): loading a checkpoint into the distiller (``resume``, ``load_from``)
            refuses one with missing or unexpected keys, i.e. another model's (mmengine loads it
            non-strictly and fails later, if at all). Defaults to True.
        teacher_precision (str): ``'fp32'`` (exact), ``'bf16'`` or ``'fp16'`` (CUDA only):
            autocast for the teacher forward only; the losses stay float32. Defaults to 'fp32'.
    """

    #: Input of the fold check: ``(1, 3, size, size)``, small enough to cost nothing.
    probe_size = 64

    def __init__(self,
                 student: nn.Module,
                 teacher: nn.Module,
                 teacher_ckpt: Optional[str],
                 teacher_ckpt_strict: bool = True,
                 teacher_ckpt_trusted: bool = False,
                 init_cfg: Optional[dict] = None,
                 load_strict: bool = True,
                 teacher_precision: str = 'fp32') -> None:
        super().__init__(data_preprocessor=BaseDataPreprocessor(), init_cfg=init_cfg)
        if load_strict:
            self.register_load_state_dict_post_hook(refuse_mismatched_state_dict)
        check_teacher_precision(teacher_precision,
                                'cuda' if torch.cuda.is_available() else 'cpu')
        if not teacher_ckpt:
            raise ValueError(f'{type(self).__name__}: `teacher_ckpt` is required (a path or URL '
                             'of the teacher weights); a random teacher teaches nothing')
        self.student = student
        self.teacher_ckpt = teacher_ckpt
        load_teacher_checkpoint(teacher, teacher_ckpt, teacher_ckpt_strict, teacher_ckpt_trusted)
        teacher.requires_grad_(False)
        teacher.eval()
        teacher = fold_batchnorms(teacher, self.teacher_probe)
        object.__setattr__(self, 'teacher', teacher)
        self.teacher_precision = teacher_precision
        guard_projector_decay(self)

    def teacher_probe(self, teacher: nn.Module) -> Sequence[Tensor]:
        """What the distiller reads of ``teacher`` on a fixed input (checks the BN fold)."""
        raise NotImplementedError

    def probe_inputs(self) -> Tensor:
        """A fixed ``(1, 3, probe_size, probe_size)`` input; the global RNG is left alone."""
        generator = torch.Generator().manual_seed(0)
        return torch.randn(1, 3, self.probe_size, self.probe_size, generator=generator)

    def teacher_forward(self, forward: Callable[[Tensor], Sequence[Tensor]],
                        inputs: Tensor) -> Tuple[Tensor, ...]:
        """``forward(inputs)`` of the frozen teacher, fast (see :func:`run_frozen_teacher`):
        contiguous float32 outputs that never reach autograd."""
        return run_frozen_teacher(self.teacher, forward, inputs, self.teacher_precision)

    def init_weights(self) -> None:
        """mmengine's ``init_weights``; a refused ``Pretrained`` checkpoint names its config key."""
        try:
            super().init_weights()
        except UnsafeCheckpointError as error:
            raise UnsafeCheckpointError(error.source, error.unsafe_globals,
                                        key=_init_cfg_key(self, error.source)) from error

    def train(self, mode: bool = True) -> 'BaseDistiller':
        super().train(mode)
        self.teacher.train(False)
        return self

    def __deepcopy__(self, memo: dict) -> 'BaseDistiller':
        """A deep copy that shares the frozen teacher: the teacher is read-only, so a copy (e.g.
        mmengine's ``EMAHook``, which averages a deep copy of the model: RTMDet's recipe) would
        only hold a second, never-used teacher on the device. The student, the distillation
        modules and everything else are copied as usual."""
        memo[id(self.teacher)] = self.teacher
        copied = type(self).__new__(type(self))
        memo[id(self)] = copied
        copied.__setstate__(copy.deepcopy(self.__dict__, memo))
        return copied

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        self.teacher._apply(fn, *args, **kwargs)
        # BaseModel.to() tells data preprocessors their device through `_modules` only: the
        # teacher's, outside them, learns it from its own public to().
        parameter = next(self.teacher.parameters(), None)
        if parameter is not None:
            for module in self.teacher.modules():
                if isinstance(module, BaseDataPreprocessor):
                    module.to(parameter.device)
        return self


def _init_cfg_key(model: nn.Module, checkpoint: str) -> str:
    """``'student.backbone.init_cfg'``: where in ``model`` an ``init_cfg`` names ``checkpoint``."""
    for name, module in model.named_modules():
        init_cfg = getattr(module, 'init_cfg', None)
        for cfg in init_cfg if isinstance(init_cfg, list) else [init_cfg]:
            if isinstance(cfg, dict) and cfg.get('checkpoint') == checkpoint:
                return f'{name}.init_cfg' if name else 'init_cfg'
    return 'init_cfg'


def isolated_rng() -> contextlib.AbstractContextManager:
    """Random draws inside leave torch's global generator where it was.

    Distillers build the student first and everything else (teacher, losses, projectors) inside
    this context: with the same seed, the student's construction and ``init_weights`` then draw
    exactly what they draw when the student trains alone, so "student alone vs distilled" runs of
    one seed start from the same weights.
    """
    return torch.random.fork_rng(devices=[])
