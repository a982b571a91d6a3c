"""Loading a distiller's frozen teacher from ``teacher_ckpt``: the first checkpoint a distiller
loads, so it installs the safe loading (:mod:`.safe_loading`) first."""
import contextlib
from typing import Dict

import torch.nn as nn
from mmengine.runner.checkpoint import CheckpointLoader, load_state_dict
from torch import Tensor

from .checkpoint import UnsafeCheckpointError, trusted_checkpoints
from .safe_loading import install_safe_loading


def read_teacher_state_dict(filename: str, trusted: bool) -> Dict[str, Tensor]:
    """The state dict of the teacher checkpoint ``filename`` (path or URL), read with the safe
    loader unless ``trusted``.

    Accepts a bare state dict or a checkpoint with ``state_dict`` (mmengine) or ``model`` (DeiT's
    releases); a DDP ``module.`` prefix is stripped. Errors name ``teacher_ckpt`` and what to do.

    Note:
        Installs the safe loading first (:func:`~.safe_loading.install_safe_loading`): building a
        distiller is the point where vkd_mmdet changes mmengine's loaders for the process.
    """
    install_safe_loading()
    context = trusted_checkpoints() if trusted else contextlib.nullcontext()
    try:
        with context:
            checkpoint = CheckpointLoader.load_checkpoint(filename, map_location='cpu')
    except FileNotFoundError as error:
        raise FileNotFoundError(f'teacher_ckpt: no checkpoint at {filename!r}') from error
    except UnsafeCheckpointError as error:
        raise UnsafeCheckpointError(
            filename, error.unsafe_globals, key='teacher_ckpt',
            how_to_trust='set `teacher_ckpt_trusted=True` in the distiller config') from error
    except RuntimeError as error:
        raise RuntimeError(f'teacher_ckpt {filename!r}: {error}') from error
    if not isinstance(checkpoint, dict):
        raise TypeError(f'teacher_ckpt {filename!r} holds a {type(checkpoint).__name__}, '
                        'expected a state dict or a checkpoint dict with `state_dict`')
    # mmengine / mmdet checkpoints keep weights under 'state_dict', DeiT's releases under 'model'.
    state_dict = next((checkpoint[key] for key in ('state_dict', 'model')
                       if isinstance(checkpoint.get(key), dict)), checkpoint)
    return {key[len('module.'):] if key.startswith('module.') else key: value
            for key, value in state_dict.items()}


def load_teacher_checkpoint(teacher: nn.Module, filename: str, strict: bool,
                            trusted: bool) -> None:
    """Load ``filename`` (path or URL) into ``teacher`` with the safe loader unless ``trusted``
    (see :func:`read_teacher_state_dict`)."""
    state_dict = read_teacher_state_dict(filename, trusted)
    try:
        load_state_dict(teacher, state_dict, strict=strict)
    except RuntimeError as error:
        raise RuntimeError(
            f'teacher_ckpt {filename!r} does not match the teacher config '
            f'(set teacher_ckpt_strict=False to load it anyway):\n{error}') from error
