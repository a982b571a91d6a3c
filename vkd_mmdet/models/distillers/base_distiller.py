"""What every distiller shares: a trainable student and a frozen, unsaved teacher."""
import contextlib
import copy
import os.path as osp
import pickle
from typing import Dict, Optional, Union

import torch
import torch.nn as nn
from mmengine.config import Config, ConfigDict
from mmengine.model import BaseDataPreprocessor, BaseModel
from mmengine.optim import OptimWrapper
from mmengine.registry import Registry
from mmengine.runner.checkpoint import CheckpointLoader, load_state_dict
from mmengine.utils import get_installed_path

from ...engine import trusted_checkpoints
from ..projectors import OrthogonalProjector

NO_DECAY_HINT = "paramwise_cfg=dict(custom_keys={'projector': dict(decay_mult=0.)})"


class BaseDistiller(BaseModel):
    """A student trained under a frozen teacher.

    The teacher is kept out of ``_modules`` (a plain attribute, as mmdet's KD detector does), so it
    is absent from ``parameters()`` (hence from the optimizer and from DDP's gradient buckets),
    from ``state_dict()`` (hence from saved checkpoints: on resume it is reloaded from
    ``teacher_ckpt``) and from ``init_weights()``. ``_apply`` forwards ``to`` / ``cuda`` / ``cpu``
    / ``half`` / ``to(dtype)`` to it, and ``train()`` leaves it in eval mode (BatchNorm keeps its
    running statistics).

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
    """

    def __init__(self,
                 student: nn.Module,
                 teacher: nn.Module,
                 teacher_ckpt: Optional[str],
                 teacher_ckpt_strict: bool = True,
                 teacher_ckpt_trusted: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=BaseDataPreprocessor(), init_cfg=init_cfg)
        if not teacher_ckpt:
            raise ValueError(f'{type(self).__name__}: `teacher_ckpt` is required (a path or URL '
                             'of the teacher weights); a random teacher teaches nothing')
        self.student = student
        self.teacher_ckpt = teacher_ckpt
        load_teacher_checkpoint(teacher, teacher_ckpt, teacher_ckpt_strict, teacher_ckpt_trusted)
        teacher.requires_grad_(False)
        teacher.eval()
        object.__setattr__(self, 'teacher', teacher)
        self._checked_optimizer = False

    def train_step(self, data: Union[dict, tuple, list],
                   optim_wrapper: OptimWrapper) -> Dict[str, torch.Tensor]:
        if not self._checked_optimizer:
            check_projectors_not_decayed(self, optim_wrapper)
            self._checked_optimizer = True
        return super().train_step(data, optim_wrapper)

    def train(self, mode: bool = True) -> 'BaseDistiller':
        super().train(mode)
        self.teacher.train(False)
        return self

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        self.teacher._apply(fn, *args, **kwargs)
        # BaseModel.to() tells data preprocessors their device through `_modules` only.
        parameter = next(self.teacher.parameters(), None)
        if parameter is not None:
            for module in self.teacher.modules():
                if isinstance(module, BaseDataPreprocessor):
                    module._device = parameter.device
        return self


def check_projectors_not_decayed(model: nn.Module, optim_wrapper: OptimWrapper) -> None:
    """Refuse an optimizer that applies weight decay to an orthogonal projector.

    Decay pulls a projector's free parameters to zero, i.e. its weight back to initialisation
    (and PyTorch's Householder map to an all-zero matrix): a silent loss of the distillation.
    """
    names = {id(param): name for name, param in model.named_parameters()}
    projector_params = {id(param) for module in model.modules()
                        if isinstance(module, OrthogonalProjector) for param in module.parameters()}
    optimizer = getattr(optim_wrapper, 'optimizer', None)
    for group in getattr(optimizer, 'param_groups', []):
        decayed = [names[id(p)] for p in group['params'] if id(p) in projector_params]
        if decayed and group.get('weight_decay', 0):
            raise ValueError(
                f'optim_wrapper: orthogonal projector parameters ({", ".join(decayed[:3])}'
                f'{", ..." if len(decayed) > 3 else ""}) are in a param group with '
                f'weight_decay={group["weight_decay"]}; decay drags them back to their '
                f'initialisation. Add {NO_DECAY_HINT} to optim_wrapper.')


def load_model_cfg(cfg_path: str) -> ConfigDict:
    """The ``model`` of a config file; ``'mmdet::path.py'`` names a package's packaged config."""
    if '::' in cfg_path:
        package, relative = cfg_path.split('::', 1)
        path = osp.join(get_installed_path(package), '.mim', 'configs', relative)
    else:
        path = cfg_path
    if not osp.isfile(path):
        raise FileNotFoundError(f'cfg_path {cfg_path!r}: no config file at {path}')
    return Config.fromfile(path).model


def resolve_model_cfg(cfg: Union[dict, nn.Module], key: str) -> Union[ConfigDict, nn.Module]:
    """A model config, where ``dict(cfg_path=..., **overrides)`` (MMRazor's convention) becomes the
    ``model`` of that config file with ``overrides`` merged in (mmengine merge rules, ``_delete_``
    included). Built modules pass through.
    """
    if isinstance(cfg, nn.Module):
        return cfg
    if not isinstance(cfg, dict):
        raise TypeError(f'`{key}` must be a model config dict, got {type(cfg).__name__}')
    cfg = copy.deepcopy(dict(cfg))
    if 'cfg_path' not in cfg:
        return ConfigDict(cfg)
    model = load_model_cfg(cfg.pop('cfg_path'))
    model.merge(cfg)
    return model


def isolated_rng() -> contextlib.AbstractContextManager:
    """Random draws inside leave torch's global generator where it was.

    Distillers build the student first and everything else (teacher, losses, projectors) inside
    this context: with the same seed, the student's construction and ``init_weights`` then draw
    exactly what they draw when the student trains alone, so "student alone vs distilled" runs of
    one seed start from the same weights.
    """
    return torch.random.fork_rng(devices=[])


def build_model(cfg: Union[dict, nn.Module], registry: Registry) -> nn.Module:
    """Build a resolved model config, or pass a built module through."""
    return cfg if isinstance(cfg, nn.Module) else registry.build(cfg)


def load_teacher_checkpoint(teacher: nn.Module, filename: str, strict: bool,
                            trusted: bool) -> None:
    """Load ``filename`` into ``teacher`` with the safe loader unless ``trusted``.

    Accepts a bare state dict or a checkpoint with ``state_dict`` (mmengine) or ``model`` (DeiT's
    releases); a DDP ``module.`` prefix is stripped. Errors name ``teacher_ckpt`` and what to do.
    """
    context = trusted_checkpoints() if trusted else contextlib.nullcontext()
    try:
        with context:
            checkpoint = CheckpointLoader.load_checkpoint(filename, map_location='cpu')
    except FileNotFoundError as error:
        raise FileNotFoundError(f'teacher_ckpt: no checkpoint at {filename!r}') from error
    except pickle.UnpicklingError as error:
        raise RuntimeError(
            f'teacher_ckpt {filename!r} holds Python objects that torch.load(weights_only=True) '
            'refuses. Unpickling them runs arbitrary code: if you trust the file, set '
            '`teacher_ckpt_trusted=True` in the distiller config.') from error
    # mmengine / mmdet checkpoints keep weights under 'state_dict', DeiT's releases under 'model'.
    state_dict = next((checkpoint[key] for key in ('state_dict', 'model')
                       if isinstance(checkpoint.get(key), dict)), checkpoint)
    state_dict = {key[len('module.'):] if key.startswith('module.') else key: value
                  for key, value in state_dict.items()}
    try:
        load_state_dict(teacher, state_dict, strict=strict)
    except RuntimeError as error:
        raise RuntimeError(
            f'teacher_ckpt {filename!r} does not match the teacher config '
            f'(set teacher_ckpt_strict=False to load it anyway):\n{error}') from error
