"""Feature distillation for any mmdet detector with a neck (two-stage or one-stage)."""
import contextlib
import copy
import functools
import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from torch import Tensor

from ...utils.model_cfg import build_model, resolve_model_cfg
from ..utils import padding_mask
from .base_distiller import BaseDistiller, isolated_rng
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

    ``distill_losses`` maps a name to a feature-loss config. Every loss module takes
    ``(student (N, C_s, H, W), teacher (N, C_t, H, W), valid_mask (N, 1, H, W) or None)`` and
    returns a scalar (or a dict of named scalars, logged as ``loss_<name>_<key>_p<k>``). The
    distiller builds one module per distilled level (its own projector per level) and reads one
    extra key of each entry:

    - ``levels`` (list[int], optional): indices of the neck outputs to distil. Defaults to all.
    - ``inputs`` (str, optional): what the loss consumes; defaults to the loss class's
      ``input_type`` attribute, else ``'fpn'`` (the protocol above, one module per level).
      ``'fpn_levels'``: one module called once with the lists of the levels' student features,
      teacher features and masks (e.g. ``RTKLoss``), logged as ``loss_<name>``.
      ``'roi_embeddings'`` / ``'roi_logits'`` (two-stage students only): one module called with
      the box-head embeddings (input of ``fc_cls``, after ReLU) of student and teacher on the
      RoIs the student's RoI head sampled, plus their labels (e.g. ``NDLoss``), or with their
      class logits (e.g. ``type='LogitKDLoss', inputs='roi_logits'``), logged as
      ``loss_<name>``.

    Levels of student and teacher pair by index; a different count or spatial size is an error,
    never a broadcast.

    Args:
        student (dict): mmdet detector config of the student (needs a neck), or
            ``dict(cfg_path='mmdet::...', **overrides)`` to take the ``model`` of a config file.
        teacher (dict): the same for the teacher.
        teacher_ckpt (str): path or URL of the teacher's weights.
        distill_losses (dict[str, dict]): loss name -> loss config (+ ``levels``).
        teacher_ckpt_strict (bool): refuse missing / unexpected teacher keys. Defaults to True.
        teacher_ckpt_trusted (bool): allow a teacher checkpoint that needs full unpickling.
            Defaults to False.
        init_cfg (dict, optional): mmengine init config.
        load_strict (bool): refuse a checkpoint of another model on resume / load_from (see
            :class:`BaseDistiller`). Defaults to True.
        teacher_precision (str): ``'fp32'``, ``'bf16'`` or ``'fp16'`` (CUDA only) for the
            teacher forward; losses stay float32. Defaults to 'fp32'.

    Config:
        .. code-block:: python

            model = dict(
                type='DetectionDistiller',
                student=dict(
                    cfg_path='mmdet::faster_rcnn/faster-rcnn_r50_fpn_2x_coco.py',
                    backbone=dict(depth=18), neck=dict(in_channels=[64, 128, 256, 512])),
                teacher=dict(cfg_path='mmdet::faster_rcnn/faster-rcnn_r101_fpn_2x_coco.py'),
                teacher_ckpt='https://download.openmmlab.com/...pth',
                distill_losses=dict(
                    vkd=dict(type='VkDLoss', in_channels=256, out_channels=256,
                             loss_weight=1.0)))
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
                 teacher_precision: str = 'fp32') -> None:
        student = resolve_model_cfg(student, 'student')
        teacher = resolve_model_cfg(teacher, 'teacher')
        student_model = build_model(student, MODELS)
        with isolated_rng():
            teacher_model = build_model(teacher, MODELS)
        for key, model in (('student', student_model), ('teacher', teacher_model)):
            if getattr(model, 'neck', None) is None:
                raise ValueError(f'DetectionDistiller: the `{key}` detector has no neck; feature '
                                 'distillation matches neck (FPN) outputs level by level')
        num_levels = _check_level_counts(student, teacher)
        super().__init__(student_model, teacher_model, teacher_ckpt, teacher_ckpt_strict,
                         teacher_ckpt_trusted, init_cfg, load_strict,
                         teacher_precision=teacher_precision)
        if not distill_losses:
            raise ValueError('DetectionDistiller: `distill_losses` is empty; give at least one '
                             "loss, e.g. dict(vkd=dict(type='VkDLoss', in_channels=256, "
                             'out_channels=256))')
        self.distill_losses = nn.ModuleDict()
        self.distill_levels: Dict[str, List[int]] = {}
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
                levels = list(cfg.pop('levels', range(num_levels or 0)))
                if not levels:
                    raise ValueError(f'distill_losses.{name}.levels: give the neck output '
                                     'indices to distil (the neck configs do not state '
                                     '`num_outs`)')
                if num_levels is not None and not all(0 <= lvl < num_levels for lvl in levels):
                    raise ValueError(f'distill_losses.{name}.levels={levels}: the necks have '
                                     f'{num_levels} outputs (indices 0..{num_levels - 1})')
                _check_loss_channels(name, cfg, student, teacher)
                self.distill_levels[name] = levels
                copies = 1 if inputs == 'fpn_levels' else len(levels)
                self.distill_losses[name] = nn.ModuleList(MODELS.build(copy.deepcopy(cfg))
                                                          for _ in range(copies))

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
        _check_levels_pair(student_feats, teacher_feats)
        # FPN levels double their stride level by level: name them from the first one
        # (a ratio per level would give tiny top levels, e.g. P6 and P7 of size 1, one name).
        first = round(math.log2(batch_inputs.shape[-2] / student_feats[0].shape[2]))
        names = [f'p{first + level}' for level in range(len(student_feats))]
        masks = [padding_mask(data_samples, feat.shape[2:], 2**(first + level), feat.device)
                 for level, feat in enumerate(student_feats)]
        student_feats = [feat.float() for feat in student_feats]
        teacher_feats = [feat.float().detach() for feat in teacher_feats]
        losses = {}
        with torch.autocast(device_type=batch_inputs.device.type, enabled=False):
            for name, modules in self.distill_losses.items():
                levels = self.distill_levels[name]
                if self.distill_inputs[name] == 'fpn_levels':
                    losses[f'loss_{name}'] = modules[0](
                        [student_feats[lvl] for lvl in levels],
                        [teacher_feats[lvl] for lvl in levels], [masks[lvl] for lvl in levels])
                    continue
                for level, module in zip(levels, modules):
                    out = module(student_feats[level], teacher_feats[level], masks[level])
                    if isinstance(out, dict):
                        losses.update({f'loss_{name}_{key}_{names[level]}': value
                                       for key, value in out.items()})
                    else:
                        losses[f'loss_{name}_{names[level]}'] = out
        return losses


@contextlib.contextmanager
def capture_outputs(module: nn.Module):
    """Collect the outputs of every call of ``module`` inside the context."""
    outputs: list = []
    handle = module.register_forward_hook(lambda _module, _args, out: outputs.append(out))
    try:
        yield outputs
    finally:
        handle.remove()


def _check_levels_pair(student_feats: Sequence[Tensor], teacher_feats: Sequence[Tensor]) -> None:
    """Levels pair by index: same count, batch and spatial size, never a broadcast."""
    if len(student_feats) != len(teacher_feats):
        raise ValueError(f'DetectionDistiller: the student neck gives {len(student_feats)} '
                         f'levels, the teacher neck {len(teacher_feats)}; they pair by index')
    for level, (student, teacher) in enumerate(zip(student_feats, teacher_feats)):
        if student.shape[0] != teacher.shape[0] or student.shape[2:] != teacher.shape[2:]:
            raise ValueError(
                f'DetectionDistiller: level {level} student feature {tuple(student.shape)} and '
                f'teacher feature {tuple(teacher.shape)} differ in batch or spatial size (same '
                'input size and strides expected: check pad_size_divisor and batch_augments)')


def _cfg_get(cfg: Union[dict, nn.Module], *keys: str):
    """``cfg[k0][k1]...`` for a config dict, None when absent (or for a built module)."""
    for key in keys:
        if not isinstance(cfg, dict) or key not in cfg:
            return None
        cfg = cfg[key]
    return cfg


def _loss_input_type(cfg: dict) -> str:
    """The ``input_type`` class attribute of the loss ``cfg`` builds, ``'fpn'`` by default."""
    loss_type = cfg.get('type')
    loss_cls = loss_type if isinstance(loss_type, type) else MODELS.get(loss_type)
    return getattr(loss_cls, 'input_type', 'fpn')


def _check_level_counts(student: dict, teacher: dict) -> Optional[int]:
    student_levels = _cfg_get(student, 'neck', 'num_outs')
    teacher_levels = _cfg_get(teacher, 'neck', 'num_outs')
    if student_levels is not None and teacher_levels is not None \
            and student_levels != teacher_levels:
        raise ValueError(f'DetectionDistiller: student.neck.num_outs={student_levels} but '
                         f'teacher.neck.num_outs={teacher_levels}; levels pair by index')
    return student_levels if student_levels is not None else teacher_levels


def _check_loss_channels(name: str, cfg: dict, student: dict, teacher: dict) -> None:
    for side, key in ((student, 'in_channels'), (teacher, 'out_channels')):
        neck_channels = _cfg_get(side, 'neck', 'out_channels')
        if key in cfg and neck_channels is not None and cfg[key] != neck_channels:
            who = 'student' if side is student else 'teacher'
            raise ValueError(f'distill_losses.{name}.{key}={cfg[key]} but '
                             f'{who}.neck.out_channels={neck_channels}')

