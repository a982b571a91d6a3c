"""Start the student's neck and heads from the teacher's weights (FGD / MGD's "inherit")."""
from typing import Dict, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.logging import print_log

from ...utils.teacher_checkpoint import read_teacher_state_dict

#: How many mismatching keys an error lists.
LISTED_KEYS = 5


def check_inherit(inherit: Union[str, Sequence[str], None], student: nn.Module,
                  teacher: nn.Module) -> Tuple[str, ...]:
    """The ``inherit`` option as a tuple of module names, checked at build time.

    Args:
        inherit (str | Sequence[str] | None): top-level submodules of the detector (e.g.
            ``('neck', 'bbox_head')``, ``('neck', 'rpn_head', 'roi_head')``); a str names one.
        student (nn.Module): the built student.
        teacher (nn.Module): the built teacher.

    Raises:
        TypeError / ValueError: naming ``inherit``: not names, a name given twice, or a name that
            is not a submodule with weights of both detectors.
    """
    if inherit is None or isinstance(inherit, str):
        names = () if inherit is None else (inherit, )
    else:
        names = tuple(inherit) if isinstance(inherit, (list, tuple)) else (None, )
    if not all(isinstance(name, str) and name for name in names):
        raise TypeError(f'inherit={inherit!r}: expected module names of the detector, e.g. '
                        "inherit=('neck', 'bbox_head')")
    if len(set(names)) != len(names):
        raise ValueError(f'inherit={inherit!r} names a module twice')
    for name in names:
        for side, model in (('student', student), ('teacher', teacher)):
            module = getattr(model, name, None)
            if not isinstance(module, nn.Module) or not module.state_dict():
                children = [child for child, sub in model.named_children() if sub.state_dict()]
                raise ValueError(f'inherit: the {side} ({type(model).__name__}) has no module '
                                 f'{name!r} with weights; it has {children}')
    return names


def inherit_teacher_weights(student: nn.Module, names: Sequence[str], teacher_ckpt: str,
                            trusted: bool = False) -> int:
    """Copy the modules ``names`` of the teacher checkpoint into ``student``; return the count.

    The weights come from the checkpoint file itself: the distiller's teacher has its BatchNorms
    folded into its convolutions, which the student (training its BatchNorms) must not inherit.
    Every tensor (parameters and buffers, BatchNorm statistics included) of each named student
    module must be in the checkpoint with the same shape, and the checkpoint must hold nothing
    else under those names: anything else is an error listing the first mismatching keys, never a
    partial copy.

    Args:
        student (nn.Module): the student detector.
        names (Sequence[str]): its top-level modules to copy, e.g. ``('neck', 'bbox_head')``.
        teacher_ckpt (str): path or URL of the teacher checkpoint.
        trusted (bool): read it with full unpickling (``teacher_ckpt_trusted``). Defaults to False.

    Returns:
        int: the number of tensors copied.

    Raises:
        ValueError: naming ``inherit`` and the keys: missing, unexpected or of another shape.
    """
    checkpoint = read_teacher_state_dict(teacher_ckpt, trusted)
    wanted: Dict[str, torch.Tensor] = {
        f'{name}.{key}': value for name in names
        for key, value in getattr(student, name).state_dict().items()}
    held = {key: value for key, value in checkpoint.items()
            if any(key.startswith(f'{name}.') for name in names)}
    problems = [f'{key} missing from the checkpoint' for key in wanted if key not in held]
    problems += [f'{key} {tuple(held[key].shape)} in the checkpoint, {tuple(value.shape)} in the '
                 'student' for key, value in wanted.items()
                 if key in held and held[key].shape != value.shape]
    problems += [f'{key} in the checkpoint, not in the student' for key in held
                 if key not in wanted]
    if problems:
        listed = '; '.join(problems[:LISTED_KEYS])
        more = f' (and {len(problems) - LISTED_KEYS} more)' if len(problems) > LISTED_KEYS else ''
        raise ValueError(
            f'inherit={tuple(names)}: teacher_ckpt {teacher_ckpt!r} does not match the '
            f'student: {listed}{more}. Inherit only modules of the same architecture and widths '
            '(or remove `inherit`)')
    with torch.no_grad():
        for key, value in wanted.items():
            value.copy_(held[key])
    print_log(f'inherit: copied {len(wanted)} tensors ({", ".join(names)}) from teacher_ckpt '
              f'{teacher_ckpt} into the student', logger='current')
    return len(wanted)
