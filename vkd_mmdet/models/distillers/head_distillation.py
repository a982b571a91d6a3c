"""Dense-head distillation inputs of a one-stage detector (LD, CrossKD on GFL, RetinaNet, ...).

The teacher runs backbone + neck + its dense head in one frozen forward, recording its towers'
features at conv ``k`` before the activation. During the student's own ``loss`` its head's
outputs, the same tower features and, for losses that ask, its assignment of the step (what its
``get_targets`` returned) are recorded on the way: no second pass, no second assignment, the
student's own losses untouched.
"""
import contextlib
import copy
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmdet.registry import MODELS
from mmdet.structures.bbox import get_box_tensor
from torch import Tensor

from ..utils import capture_outputs
from ..utils.dense_head_adapters import (
    TeacherDenseHead,
    check_assignment_api,
    head_family,
    head_outputs,
    record_assignment,
    tower_preactivation,
)
from ..utils.dense_head_outputs import TOWERS, HeadAssignment, HeadOutputs

#: The input kind of :class:`~vkd_mmdet.models.losses.DenseHeadDistillLoss`.
HEAD_KIND = 'dense_head'
#: What the detection distiller gives a ``'dense_head'`` loss besides both sides' outputs.
HEAD_EXTRAS = ('assignment', 'teacher_head', 'gt_bboxes', 'generator')


def dense_head(detector: nn.Module, side: str, key: str) -> nn.Module:
    """``detector.bbox_head`` when it is a supported dense head, or an error naming ``side``."""
    head = getattr(detector, 'bbox_head', None)
    if head is None:
        raise ValueError(f'{key}: head distillation needs one-stage detectors with a dense '
                         f'`bbox_head`; the {side} {type(detector).__name__} has none')
    head_family(head, f'{key} ({side} {type(detector).__name__})')
    return head


def build_head_loss(name: str, cfg: dict, student: nn.Module, teacher: nn.Module) -> nn.Module:
    """The ``'dense_head'`` loss of ``cfg``: its ``channel_args`` filled from the heads' tower
    widths (``feat_channels``; a value the config gives must match), the heads checked by the
    loss (:meth:`check_heads`) and by what the distiller reads of them."""
    key = f'distill_losses.{name}'
    heads = {side: dense_head(model, side, key)
             for side, model in (('student', student), ('teacher', teacher))}
    cfg = copy.deepcopy(cfg)
    loss_cls = MODELS.get(cfg['type']) if isinstance(cfg['type'], str) else cfg['type']
    for arg, side in loss_cls.channel_args.items():
        width = heads[side].feat_channels
        if arg in cfg and cfg[arg] != width:
            raise ValueError(f'{key}.{arg}={cfg[arg]} but {side}.bbox_head.feat_channels='
                             f'{width}')
        cfg[arg] = width
    module = MODELS.build(cfg)
    module.check_heads(heads['student'], heads['teacher'], key)
    if 'assignment' in module.extras:
        check_assignment_api(heads['student'], f'{key} (student)')
    return module


def tower_conv(modules: Sequence[nn.Module]) -> Optional[int]:
    """The one tower conv the head losses read (None: none reads a tower), or an error."""
    convs = {module.tower_conv for module in modules if module.tower_conv is not None}
    if len(convs) > 1:
        raise ValueError(f'distill_losses: the dense-head losses read tower convs '
                         f'{sorted(convs)}; one distiller records one (give them the same '
                         '`tower_conv`)')
    return next(iter(convs), None)


def _tower_layers(head: nn.Module, conv: Optional[int]) -> Dict[str, nn.Module]:
    return {} if conv is None else {
        tower: tower_preactivation(head, tower, conv, 'distill_losses') for tower in TOWERS}


@contextlib.contextmanager
def capture_student_head(detector: nn.Module, conv: Optional[int],
                         assign: bool) -> Iterator[Dict[str, object]]:
    """Inside the context (around ``detector.loss``), record the student head's
    :class:`HeadOutputs` (``'outputs'``) and, with ``assign``, its :class:`HeadAssignment`
    (``'assignment'``); filled when the block ends, with a clear error if the head did not run
    exactly once."""
    head = detector.bbox_head
    record: Dict[str, object] = {}
    assignments: List[HeadAssignment] = []
    with contextlib.ExitStack() as stack:
        outputs = stack.enter_context(capture_outputs(head))
        towers = {tower: stack.enter_context(capture_outputs(layer))
                  for tower, layer in _tower_layers(head, conv).items()}
        if assign:
            stack.enter_context(record_assignment(head, assignments))
        yield record
    if len(outputs) != 1 or (assign and len(assignments) != 1):
        raise RuntimeError(f'DetectionDistiller: the student {type(head).__name__} ran '
                           f'{len(outputs)} time(s) and computed its targets '
                           f'{len(assignments)} time(s) in one loss step; expected once each')
    record['outputs'] = head_outputs(outputs[0], towers)
    if assign:
        record['assignment'] = assignments[0]


def teacher_head_forward(
        run: Callable[[Callable, Tensor], Tuple[Tensor, ...]], teacher: nn.Module,
        inputs: Tensor, conv: Optional[int]) -> Tuple[Tuple[Tensor, ...], HeadOutputs]:
    """The teacher's neck outputs and :class:`HeadOutputs` from one frozen forward.

    Args:
        run (Callable): the distiller's ``teacher_forward`` (folded BN, inference mode).
        teacher (nn.Module): the (folded) teacher detector.
        inputs (Tensor): its normalised batch ``(N, 3, H, W)``.
        conv (int, optional): the tower conv to record.
    """
    head = teacher.bbox_head
    sizes = {}

    def forward(batch: Tensor) -> Tuple[Tensor, ...]:
        with contextlib.ExitStack() as stack:
            towers = {tower: stack.enter_context(capture_outputs(layer))
                      for tower, layer in _tower_layers(head, conv).items()}
            feats = teacher.extract_feat(batch)
            cls_scores, bbox_preds = head(feats)[:2]
        sizes.update(feats=len(feats), levels=len(cls_scores))
        return (*feats, *cls_scores, *bbox_preds, *(t for tower in towers.values() for t in tower))

    flat = list(run(forward, inputs))
    feats = tuple(flat[:sizes['feats']])
    rest = flat[sizes['feats']:]
    levels = sizes['levels']
    chunks = [rest[i:i + levels] for i in range(0, len(rest), levels)]
    towers = dict(zip(TOWERS, chunks[2:])) if conv is not None else {}
    return feats, HeadOutputs(chunks[0], chunks[1], towers)


def head_distill_losses(modules: Dict[str, nn.Module], student: Dict[str, object],
                        teacher: HeadOutputs, teacher_head: TeacherDenseHead,
                        gt_bboxes: List[Tensor],
                        generator: Optional[torch.Generator]) -> Dict[str, Tensor]:
    """``loss_<name>`` (a scalar) or ``loss_<name>_<key>`` (a dict) of every dense-head loss,
    in float32 whatever the surrounding autocast."""
    outputs: HeadOutputs = student['outputs']
    as_float = HeadOutputs([x.float() for x in outputs.cls_scores],
                           [x.float() for x in outputs.bbox_preds],
                           {tower: [x.float() for x in feats]
                            for tower, feats in outputs.towers.items()})
    extras = dict(assignment=student.get('assignment'), teacher_head=teacher_head,
                  gt_bboxes=gt_bboxes, generator=generator)
    losses = {}
    with torch.autocast(device_type=teacher.cls_scores[0].device.type, enabled=False):
        for name, module in modules.items():
            out = module(as_float, teacher, **{extra: extras[extra] for extra in module.extras})
            if isinstance(out, dict):
                losses.update({f'loss_{name}_{key}': value for key, value in out.items()})
            else:
                losses[f'loss_{name}'] = out
    return losses


class HeadDistillationStep:
    """One training step of the dense-head losses of a detection distiller: the teacher's
    forward with its head, the student's record, the losses.

    Args:
        distiller (nn.Module): the ``DetectionDistiller`` (its ``teacher``, ``student`` and
            ``teacher_forward``).
        modules (dict[str, nn.Module]): name -> built ``'dense_head'`` loss.
    """

    def __init__(self, distiller: nn.Module, modules: Dict[str, nn.Module]) -> None:
        self.distiller = distiller
        self.modules = modules
        self.conv = tower_conv(list(modules.values()))
        self.assign = any('assignment' in module.extras for module in modules.values())
        self.teacher_outputs: Optional[HeadOutputs] = None
        self.student_record: Dict[str, object] = {}

    def teacher_forward(self, inputs: Tensor) -> Tuple[Tensor, ...]:
        """The teacher's neck outputs; its head outputs are kept for :meth:`losses`."""
        feats, self.teacher_outputs = teacher_head_forward(
            self.distiller.teacher_forward, self.distiller.teacher, inputs, self.conv)
        return feats

    @contextlib.contextmanager
    def capture_student(self) -> Iterator[None]:
        """Around the student's ``loss``: record its head (:func:`capture_student_head`)."""
        with capture_student_head(self.distiller.student, self.conv,
                                  self.assign) as self.student_record:
            yield

    def losses(self, data_samples: Sequence, generator: Optional[torch.Generator]
               ) -> Dict[str, Tensor]:
        """Every dense-head loss of the step (:func:`head_distill_losses`)."""
        head = self.distiller.teacher.bbox_head
        gt_bboxes = [get_box_tensor(sample.gt_instances.bboxes).float()
                     for sample in data_samples]
        return head_distill_losses(
            self.modules, self.student_record, self.teacher_outputs,
            TeacherDenseHead(head, head_family(head, 'teacher')), gt_bboxes, generator)


def head_distillation_step(distiller: nn.Module) -> Optional[HeadDistillationStep]:
    """A :class:`HeadDistillationStep` over the distiller's ``'dense_head'`` losses, or None
    when it has none."""
    modules = {name: distiller.distill_losses[name][0]
               for name, kind in distiller.loss_kinds.items() if kind == HEAD_KIND}
    return HeadDistillationStep(distiller, modules) if modules else None
