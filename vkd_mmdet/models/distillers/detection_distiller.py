"""Feature distillation for any mmdet detector with a neck (two-stage or one-stage)."""
import contextlib
import copy
import functools
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from torch import Tensor

from ...utils.model_cfg import build_model, resolve_model_cfg
from ..utils import capture_outputs, padding_mask, probe_neck_levels
from .base_distiller import BaseDistiller, isolated_rng
from .level_pairing import LevelPair, level_loss_cfg, loss_class, pair_levels
from .roi_distillation import (
    ROI_INPUTS,
    capture_student_rois,
    check_roi_head,
    roi_distill_losses,
    teacher_roi_outputs,
)

ForwardResults = Union[Dict[str, Tensor], SampleList, Tuple[Tensor, ...]]
# What a loss consumes: one FPN level per call, all its levels in one call, or RoI outputs.
INPUT_TYPES = ('fpn', 'fpn_levels') + ROI_INPUTS


@MODELS.register_module()
class DetectionDistiller(BaseDistiller):
    """Train an mmdet student detector under a frozen teacher detector.

    One training step: the teacher runs backbone + neck (BatchNorms folded, under
    ``inference_mode``, at ``teacher_precision``: :meth:`teacher_forward`); the student runs its
    full ``loss`` once, and its neck outputs (captured on the way, no second pass) are matched to
    the teacher's by every loss of ``distill_losses``, level by level. Losses are logged beside the
    student's own, one key per loss and level: ``loss_<name>_p<k>`` where ``2^k`` is the level's
    stride (``loss_vkd_p2`` ... ``loss_vkd_p6`` for Faster R-CNN). ``predict`` / ``tensor`` modes,
    validation and test run the student alone.

    At build time the distiller runs backbone + neck of each side once on a dummy batch
    (:func:`~vkd_mmdet.models.utils.probe_neck_levels`: no gradients, eval mode, torch's random
    stream untouched) and reads every output level's stride and width. **Levels pair by stride**:
    a student and a teacher output of the same stride are distilled together, so necks of
    different level counts pair on the strides they share (DINO Swin-L 5-scale, strides 4-64, over
    DINO R50 4-scale, strides 8-64: four pairs). Paired levels of equal stride but different
    spatial size (e.g. a different ``pad_size_divisor``) are an error on the first step, never a
    resize.

    ``distill_losses`` maps a name to a feature-loss config. Every loss module takes
    ``(student (N, C_s, H, W), teacher (N, C_t, H, W), valid_mask (N, 1, H, W) or None)`` and
    returns a scalar (or a dict of named scalars, logged as ``loss_<name>_<key>_p<k>``). The
    distiller builds one module per distilled level (its own projector or adapter), fills in
    ``in_channels`` / ``out_channels`` from the probed widths where the config leaves them out
    (a value it gives must match), and reads these extra keys of each entry:

    - ``levels`` (list[int], optional): student neck output indices to distil, or
    - ``strides`` (list[int], optional): strides (px) to distil. Without either: every stride
      both necks have. A level or stride one side lacks is an error.
    - ``inputs`` (str, optional): what the loss consumes; defaults to the loss class's
      ``input_type`` attribute, else ``'fpn'`` (the protocol above, one module per level).
      ``'fpn_levels'``: one module called once with the lists of the levels' student features,
      teacher features and masks (e.g. ``RTKLoss``), logged as ``loss_<name>``.
      ``'roi_embeddings'`` / ``'roi_logits'`` (two-stage students only): one module called with
      the box-head embeddings (input of ``fc_cls``, after ReLU) of student and teacher on the
      RoIs the student's RoI head sampled, plus their labels (e.g. ``NDLoss``), or with their
      class logits (e.g. ``type='LogitKDLoss', inputs='roi_logits'``), logged as
      ``loss_<name>``.

    Args:
        student (dict): mmdet detector config of the student (needs a neck), or
            ``dict(cfg_path='mmdet::...', **overrides)`` to take the ``model`` of a config file.
        teacher (dict): the same for the teacher.
        teacher_ckpt (str): path or URL of the teacher's weights.
        distill_losses (dict[str, dict]): loss name -> loss config (+ ``levels`` or
            ``strides``, ``inputs``).
        teacher_ckpt_strict (bool): refuse missing / unexpected teacher keys. Defaults to True.
        teacher_ckpt_trusted (bool): allow a teacher checkpoint that needs full unpickling.
            Defaults to False.
        init_cfg (dict, optional): mmengine init config.
        load_strict (bool): refuse a checkpoint of another model on resume / load_from (see
            :class:`BaseDistiller`). Defaults to True.
        teacher_precision (str): ``'fp32'``, ``'bf16'`` or ``'fp16'`` (CUDA only) for the
            teacher forward; losses stay float32. Defaults to 'fp32'.
        nonfinite_guard (dict, optional): the NaN / Inf guard's arguments (see
            :class:`BaseDistiller`). Defaults to None (on, default arguments).

    Config:
        .. code-block:: python

            model = dict(
                type='DetectionDistiller',
                student=dict(
                    cfg_path='mmdet::faster_rcnn/faster-rcnn_r50_fpn_2x_coco.py',
                    backbone=dict(depth=18), neck=dict(in_channels=[64, 128, 256, 512])),
                teacher=dict(cfg_path='mmdet::faster_rcnn/faster-rcnn_r101_fpn_2x_coco.py'),
                teacher_ckpt='https://download.openmmlab.com/...pth',
                distill_losses=dict(vkd=dict(type='VkDLoss', loss_weight=1.0)))
    """

    def __init__(self,
                 student: dict,
                 teacher: dict,
                 teacher_ckpt: Optional[str] = None,
                 distill_losses: Optional[Dict[str, dict]] = None,
                 teacher_ckpt_strict: bool = True,
                 teacher_ckpt_trusted: bool = False,
                 init_cfg: Optional[dict] = None,
                 load_strict: bool = True,
                 teacher_precision: str = 'fp32',
                 nonfinite_guard: Optional[dict] = None) -> None:
        student = resolve_model_cfg(student, 'student')
        teacher = resolve_model_cfg(teacher, 'teacher')
        student_model = build_model(student, MODELS)
        with isolated_rng():
            teacher_model = build_model(teacher, MODELS)
        for key, model in (('student', student_model), ('teacher', teacher_model)):
            if getattr(model, 'neck', None) is None:
                raise ValueError(f'DetectionDistiller: the `{key}` detector has no neck; feature '
                                 'distillation matches neck (FPN) outputs level by level')
        with isolated_rng():
            student_levels = probe_neck_levels(student_model, 'student')
            teacher_levels = probe_neck_levels(teacher_model, 'teacher')
        super().__init__(student_model, teacher_model, teacher_ckpt, teacher_ckpt_strict,
                         teacher_ckpt_trusted, init_cfg, load_strict,
                         teacher_precision=teacher_precision, nonfinite_guard=nonfinite_guard)
        if not distill_losses:
            raise ValueError('DetectionDistiller: `distill_losses` is empty; give at least one '
                             "loss, e.g. dict(vkd=dict(type='VkDLoss'))")
        self.num_student_levels = len(student_levels)
        self.student_strides = [level.stride for level in student_levels]
        self.distill_losses = nn.ModuleDict()
        self.distill_levels: Dict[str, List[LevelPair]] = {}
        self.distill_inputs: Dict[str, str] = {}
        with isolated_rng():
            for name, cfg in distill_losses.items():
                cfg = copy.deepcopy(dict(cfg))
                inputs = self.distill_inputs[name] = cfg.pop('inputs', _loss_input_type(cfg))
                if inputs not in INPUT_TYPES:
                    raise ValueError(f'distill_losses.{name}.inputs={inputs!r}: expected one of '
                                     f'{INPUT_TYPES}')
                if inputs in ROI_INPUTS:
                    check_roi_head(student_model, 'student', name)
                    check_roi_head(teacher_model, 'teacher', name)
                    self.distill_levels[name] = []
                    self.distill_losses[name] = nn.ModuleList([MODELS.build(cfg)])
                    continue
                pairs = self.distill_levels[name] = pair_levels(
                    name, cfg, student_levels, teacher_levels)
                groups = [pairs] if inputs == 'fpn_levels' else [[pair] for pair in pairs]
                self.distill_losses[name] = nn.ModuleList(
                    MODELS.build(level_loss_cfg(name, cfg, group)) for group in groups)

    def forward(self,
                inputs: Union[List[Tensor], Tensor],
                data_samples: Optional[SampleList] = None,
                mode: str = 'tensor') -> ForwardResults:
        """``inputs`` / ``data_samples``: the raw batch (each model normalises it itself)."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        batch = self.student.data_preprocessor(
            dict(inputs=inputs, data_samples=data_samples), False)
        if mode == 'predict':
            return self.student.predict(batch['inputs'], batch['data_samples'])
        if mode == 'tensor':
            return self.student._forward(batch['inputs'], batch['data_samples'])
        raise RuntimeError(f'Invalid mode "{mode}". Only supports loss, predict and tensor mode')

    def loss(self, inputs: Union[List[Tensor], Tensor], data_samples: SampleList) -> dict:
        # The teacher normalises first: the student's preprocessor then writes the batch
        # metadata (pad shapes) its own losses read.
        teacher_batch = self.teacher.data_preprocessor(
            dict(inputs=inputs, data_samples=data_samples), False)
        teacher_feats = self.teacher_forward(self.teacher.extract_feat, teacher_batch['inputs'])
        student_batch = self.student.data_preprocessor(
            dict(inputs=inputs, data_samples=data_samples), True)
        roi_names = [name for name, kind in self.distill_inputs.items() if kind in ROI_INPUTS]
        record_rois = capture_student_rois(self.student) if roi_names \
            else contextlib.nullcontext({})
        with capture_outputs(self.student.neck) as captured, record_rois as student_rois:
            losses = self.student.loss(student_batch['inputs'], student_batch['data_samples'])
        if len(captured) != 1:
            raise RuntimeError(f'DetectionDistiller: the student neck ran {len(captured)} times '
                               'in one loss step; expected exactly once')
        losses.update(self.distill_loss(captured[0], teacher_feats, student_batch['inputs'],
                                        student_batch['data_samples']))
        if roi_names:
            if not student_rois:
                raise RuntimeError('DetectionDistiller: the student RoI head sampled no RoIs '
                                   '(its bbox_loss did not run) in this loss step')
            embeddings, logits = self.teacher_forward(
                functools.partial(teacher_roi_outputs, self.teacher, teacher_feats),
                student_rois['rois'])
            losses.update(roi_distill_losses(
                {name: self.distill_losses[name][0] for name in roi_names}, self.distill_inputs,
                student_rois, dict(embeddings=embeddings, logits=logits)))
        return losses

    def teacher_probe(self, teacher: nn.Module) -> Tuple[Tensor, ...]:
        """The teacher's neck outputs on the probe input (what the distiller reads)."""
        return teacher.extract_feat(self.probe_inputs())

    def distill_loss(self, student_feats: Sequence[Tensor], teacher_feats: Sequence[Tensor],
                     batch_inputs: Tensor, data_samples: SampleList) -> Dict[str, Tensor]:
        """All FPN distillation losses, in float32 whatever the surrounding autocast."""
        _check_levels_pair(self.distill_levels, self.num_student_levels, student_feats,
                           teacher_feats)
        # Each level's own stride: the top levels are not batch size / stride cells high.
        masks = [padding_mask(data_samples, feat.shape[2:], stride, feat.device)
                 for feat, stride in zip(student_feats, self.student_strides)]
        student_feats = [feat.float() for feat in student_feats]
        teacher_feats = [feat.float().detach() for feat in teacher_feats]
        losses = {}
        with torch.autocast(device_type=batch_inputs.device.type, enabled=False):
            for name, modules in self.distill_losses.items():
                pairs = self.distill_levels[name]
                if self.distill_inputs[name] == 'fpn_levels':
                    losses[f'loss_{name}'] = modules[0](
                        [student_feats[pair.student] for pair in pairs],
                        [teacher_feats[pair.teacher] for pair in pairs],
                        [masks[pair.student] for pair in pairs])
                    continue
                for pair, module in zip(pairs, modules):
                    out = module(student_feats[pair.student], teacher_feats[pair.teacher],
                                 masks[pair.student])
                    if isinstance(out, dict):
                        losses.update({f'loss_{name}_{key}_{pair.name}': value
                                       for key, value in out.items()})
                    else:
                        losses[f'loss_{name}_{pair.name}'] = out
        return losses


def _check_levels_pair(distill_levels: Dict[str, List[LevelPair]], num_student_levels: int,
                       student_feats: Sequence[Tensor], teacher_feats: Sequence[Tensor]) -> None:
    """Paired levels agree in batch and spatial size: never a resize, never a broadcast."""
    if len(student_feats) != num_student_levels:
        raise ValueError(f'DetectionDistiller: the student neck gives {len(student_feats)} '
                         f'levels in training, {num_student_levels} when probed at build time')
    for pair in {pair for pairs in distill_levels.values() for pair in pairs}:
        student, teacher = student_feats[pair.student], teacher_feats[pair.teacher]
        if student.shape[0] != teacher.shape[0] or student.shape[2:] != teacher.shape[2:]:
            raise ValueError(
                f'DetectionDistiller: stride {pair.stride} student feature (level '
                f'{pair.student}) {tuple(student.shape)} and teacher feature (level '
                f'{pair.teacher}) {tuple(teacher.shape)} differ in batch or spatial size (same '
                'input size expected: check pad_size_divisor and batch_augments)')


def _loss_input_type(cfg: dict) -> str:
    """The ``input_type`` class attribute of the loss ``cfg`` builds, ``'fpn'`` by default."""
    return getattr(loss_class(cfg), 'input_type', 'fpn')
