"""Loading a distiller's frozen teacher from ``teacher_ckpt``: the first checkpoint a distiller
loads, so it installs the safe loading (:mod:`.safe_loading`) first."""
import contextlib
from typing import Any, Dict

import torch
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
    A checkpoint holding NaN / Inf values is refused (a teacher with them sends NaN gradients into
    the student from the first step).

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
    state_dict = {key[len('module.'):] if key.startswith('module.') else key: value
                  for key, value in state_dict.items()}
    check_finite_state_dict(state_dict, f'teacher_ckpt {filename!r}')
    return state_dict


def load_teacher_checkpoint(teacher: nn.Module, filename: str, strict: bool,
                            trusted: bool) -> Dict[str, Any]:
    """Load ``filename`` (path or URL) into ``teacher`` with the safe loader unless ``trusted``
    (see :func:`read_teacher_state_dict`).

    Returns:
        dict: what was loaded, for the start-up report: ``file``, ``loaded`` (the number of the
        teacher's keys the file gave), ``missing`` and ``unexpected`` (key lists; empty unless
        ``strict`` is False).
    """
    state_dict = read_teacher_state_dict(filename, trusted)
    expected = set(teacher.state_dict())
    try:
        load_state_dict(teacher, state_dict, strict=strict)
    except RuntimeError as error:
        raise RuntimeError(
            f'teacher_ckpt {filename!r} does not match the teacher config '
            f'(set teacher_ckpt_strict=False to load it anyway):\n{error}') from error
    return dict(file=filename, loaded=len(expected & set(state_dict)),
                missing=sorted(expected - set(state_dict)),
                unexpected=sorted(set(state_dict) - expected))


def check_finite_state_dict(state_dict: Dict[str, Any], what: str) -> None:
    """Refuse a state dict whose floating-point tensors hold NaN or Inf.

    Raises:
        ValueError: naming ``what`` (the file and its config key), how many tensors are
            non-finite and the first keys.
    """
    bad = [key for key, value in state_dict.items()
           if torch.is_tensor(value) and value.is_floating_point()
           and not bool(torch.isfinite(value).all())]
    if bad:
        raise ValueError(
            f'{what}: {len(bad)} of its tensors hold NaN or Inf values (first: '
            f'{", ".join(bad[:5])}); a diverged or corrupted checkpoint would send NaN gradients '
            'into the student. Use a checkpoint of a healthy run (e.g. an earlier one).')
