"""Feature distillation for any mmdet detector with a neck (two-stage or one-stage)."""
import contextlib
import copy
import functools
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.structures.bbox import get_box_tensor
from torch import Tensor

from ...utils.model_cfg import build_model, resolve_model_cfg
from ..utils import (
    CheckpointedGenerator,
    capture_outputs,
    padding_mask,
    probe_neck_levels,
    shared_batch_augments,
)
from .base_distiller import BaseDistiller, isolated_rng
from .head_distillation import HEAD_EXTRAS, HEAD_KIND, build_head_loss, head_distillation_step
from .inherit_weights import check_inherit, inherit_teacher_weights
from .level_pairing import LevelPair, level_loss_cfg, pair_levels
from .loss_builder import distill_loss_class
from .roi_distillation import (
    ROI_KINDS,
    capture_student_rois,
    check_roi_head,
    roi_distill_losses,
    teacher_roi_outputs,
)

ForwardResults = Union[Dict[str, Tensor], SampleList, Tuple[Tensor, ...]]
#: What this distiller gives a loss of each kind it consumes, besides the two sides' inputs.
EXTRAS = {
    'fpn': ('valid_mask', 'stride', 'gt_bboxes', 'generator'),
    'fpn_levels': ('valid_mask', 'gt_bboxes', 'generator'),
    'embeddings': ('labels', 'generator'),
    'logits': ('labels', 'generator'),
    HEAD_KIND: HEAD_EXTRAS,
}


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

    ``distill_losses`` maps a name to the config of a
    :class:`~vkd_mmdet.models.losses.DistillLoss`; the loss class declares what it consumes
    (``docs/write_a_loss.md``) and the distiller reads that declaration once, at build time:

    - ``'fpn'``: one module per distilled level (its own projector), called with the student's
      and the teacher's neck output of that stride, logged as ``loss_<name>_p<k>`` (a dict of
      terms as ``loss_<name>_<key>_p<k>``). The distiller fills the loss's ``channel_args``
      (``in_channels`` / ``out_channels``) from the probed widths where the config leaves them
      out (a value it gives must match).
    - ``'fpn_levels'``: one module called once with the lists of the levels (e.g. ``RTKLoss``),
      logged as ``loss_<name>``.
    - ``'embeddings'`` / ``'logits'`` (two-stage students only): one module called with the
      box-head embeddings (input of ``fc_cls``, after ReLU) or the class logits of student and
      teacher on the RoIs the student's RoI head sampled (e.g. ``NDLoss``, ``LogitKDLoss``),
      logged as ``loss_<name>``.
    - ``'dense_head'`` (one-stage students: GFL, ATSS, RetinaNet, FCOS heads): one module called
      with both heads' outputs (the teacher's head then runs in its frozen forward), e.g.
      ``LDLoss``, ``CrossKDLoss``; see :mod:`.head_distillation`. Logged as
      ``loss_<name>_<term>``.

    Per step each call also receives the extras its class lists (:data:`EXTRAS` says which kind
    gets which): ``valid_mask`` (real pixels of the level), ``stride``, ``gt_bboxes`` (in padded
    batch pixels), ``labels`` (RoI labels), ``generator`` (a generator the distiller owns and saves
    in its checkpoints: random draws resume exactly). A distillation key equal to one of the
    student's own loss keys is an error, never an overwrite. Besides the loss's own arguments an
    entry may carry:

    - ``levels`` (list[int], optional): student neck output indices to distil, or
    - ``strides`` (list[int], optional): strides (px) to distil. Without either: every stride
      both necks have. A level or stride one side lacks, or one given twice, is an error.

    The student's ``batch_augments`` (e.g. YOLOX's ``BatchSyncRandomResize``) run once per step
    and transform the teacher's batch alike (:func:`~vkd_mmdet.models.utils.shared_batch_augments`):
    both networks see the same geometry, each normalised by its own preprocessor.

    Args:
        student (dict): mmdet detector config of the student (needs a neck), or
            ``dict(cfg_path='mmdet::...', **overrides)`` to take the ``model`` of a config file.
        teacher (dict): the same for the teacher.
        teacher_ckpt (str): path or URL of the teacher's weights.
        distill_losses (dict[str, dict]): loss name -> loss config (+ ``levels`` or
            ``strides``).
        teacher_ckpt_strict (bool): refuse missing / unexpected teacher keys. Defaults to True.
        teacher_ckpt_trusted (bool): allow a teacher checkpoint that needs full unpickling.
            Defaults to False.
        init_cfg (dict, optional): mmengine init config.
        load_strict (bool): refuse a checkpoint of another model on resume / load_from (see
            :class:`BaseDistiller`). Defaults to True.
        teacher_precision (str): ``'fp32'``, ``'bf16'`` or ``'fp16'`` (CUDA only) for the
            teacher forward; losses stay float32. Defaults to 'fp32'.
        inherit (str | Sequence[str]): student modules that start from the teacher's weights,
            e.g. ``('neck', 'bbox_head')`` (FGD / MGD): copied from ``teacher_ckpt`` (unfolded)
            by ``init_weights``, after the student's own init, and only if every shape matches
            (:func:`~.inherit_weights.inherit_teacher_weights`). A resumed run then loads its
            checkpoint over them. Defaults to () (none).
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
                 inherit: Union[str, Sequence[str]] = (),
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
        self.inherit = check_inherit(inherit, student_model, teacher_model)
        self.teacher_ckpt_trusted = teacher_ckpt_trusted
        if not distill_losses:
            raise ValueError('DetectionDistiller: `distill_losses` is empty; give at least one '
                             "loss, e.g. dict(vkd=dict(type='VkDLoss'))")
        self.num_student_levels = len(student_levels)
        self.student_strides = [level.stride for level in student_levels]
        self.distill_losses = nn.ModuleDict()
        self.distill_levels: Dict[str, List[LevelPair]] = {}
        self.loss_kinds: Dict[str, str] = {}
        with isolated_rng():
            for name, cfg in distill_losses.items():
                key = f'distill_losses.{name}'
                loss_cls = distill_loss_class(MODELS, cfg, key, EXTRAS)
                cfg = copy.deepcopy(dict(cfg))
                kind = self.loss_kinds[name] = loss_cls.consumes
                if kind in ROI_KINDS:
                    check_roi_head(student_model, 'student', name)
                    check_roi_head(teacher_model, 'teacher', name)
                    self.distill_levels[name] = []
                    self.distill_losses[name] = nn.ModuleList([MODELS.build(cfg)])
                    continue
                if kind == HEAD_KIND:
                    self.distill_levels[name] = []
                    self.distill_losses[name] = nn.ModuleList(
                        [build_head_loss(name, cfg, student_model, self.teacher)])
                    continue
                pairs = self.distill_levels[name] = pair_levels(
                    name, cfg, student_levels, teacher_levels)
                groups = [pairs] if kind == 'fpn_levels' else [[pair] for pair in pairs]
                self.distill_losses[name] = nn.ModuleList(
                    MODELS.build(level_loss_cfg(name, cfg, group, loss_cls.channel_args))
                    for group in groups)
            needs_generator = any('generator' in module.extras
                                  for modules in self.distill_losses.values()
                                  for module in modules)
            # Seeded from the global stream inside isolated_rng: one value per seed, and the
            # student's own random draws stay those of the student trained alone.
            self.distill_generator = CheckpointedGenerator(
                int(torch.randint(2**62, ()))) if needs_generator else None

    def init_weights(self) -> None:
        """The student's own init, then the ``inherit`` modules copied from the teacher."""
        first = not self._is_init
        super().init_weights()
        if first and self.inherit:
            inherit_teacher_weights(self.student, self.inherit, self.teacher_ckpt,
                                    self.teacher_ckpt_trusted)

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
            return self.student(batch['inputs'], batch['data_samples'], mode='tensor')
        raise RuntimeError(f'Invalid mode "{mode}". Only supports loss, predict and tensor mode')

    def loss(self, inputs: Union[List[Tensor], Tensor], data_samples: SampleList) -> dict:
        # The teacher normalises first: the student's preprocessor then writes the batch
        # metadata (pad shapes) its own losses read; its batch augments transform both batches.
        teacher_batch = self.teacher.data_preprocessor(
            dict(inputs=inputs, data_samples=data_samples), False)
        with shared_batch_augments(self.student.data_preprocessor,
                                   teacher_batch['inputs']) as teacher_inputs:
            student_batch = self.student.data_preprocessor(
                dict(inputs=inputs, data_samples=data_samples), True)
        head_step = head_distillation_step(self)
        teacher_feats = head_step.teacher_forward(teacher_inputs[0]) if head_step \
            else self.teacher_forward(self.teacher.extract_feat, teacher_inputs[0])
        roi_names = [name for name, kind in self.loss_kinds.items() if kind in ROI_KINDS]
        record_rois = capture_student_rois(self.student) if roi_names \
            else contextlib.nullcontext({})
        record_head = head_step.capture_student() if head_step else contextlib.nullcontext()
        with capture_outputs(self.student.neck) as captured, record_rois as student_rois, \
                record_head:
            losses = self.student.loss(student_batch['inputs'], student_batch['data_samples'])
        if len(captured) != 1:
            raise RuntimeError(f'DetectionDistiller: the student neck ran {len(captured)} times '
                               'in one loss step; expected exactly once')
        distill = self.distill_loss(captured[0], teacher_feats, student_batch['inputs'],
                                    student_batch['data_samples'])
        if roi_names:
            if not student_rois:
                raise RuntimeError('DetectionDistiller: the student RoI head sampled no RoIs '
                                   '(its bbox_loss did not run) in this loss step')
            embeddings, logits = self.teacher_forward(
                functools.partial(teacher_roi_outputs, self.teacher, teacher_feats),
                student_rois['rois'])
            distill.update(roi_distill_losses(
                {name: self.distill_losses[name][0] for name in roi_names}, student_rois,
                dict(embeddings=embeddings, logits=logits), self._generator()))
        if head_step:
            distill.update(head_step.losses(student_batch['data_samples'], self._generator()))
        clash = sorted(set(distill) & set(losses))
        if clash:
            raise ValueError(f'DetectionDistiller: distillation loss key(s) {clash} equal the '
                             f"student's own loss key(s) {clash} and would replace them; rename "
                             'the distill_losses entry')
        losses.update(distill)
        return losses

    def _generator(self) -> Optional[torch.Generator]:
        """The distiller's own random generator (None when no loss asks for one)."""
        return None if self.distill_generator is None else self.distill_generator.generator

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
        gt_bboxes = [get_box_tensor(sample.gt_instances.bboxes).float()
                     for sample in data_samples]
        losses = {}
        with torch.autocast(device_type=batch_inputs.device.type, enabled=False):
            for name, modules in self.distill_losses.items():
                pairs = self.distill_levels[name]
                if self.loss_kinds[name] == 'fpn_levels':
                    extras = dict(valid_mask=[masks[pair.student] for pair in pairs],
                                  gt_bboxes=gt_bboxes, generator=self._generator())
                    losses[f'loss_{name}'] = modules[0](
                        [student_feats[pair.student] for pair in pairs],
                        [teacher_feats[pair.teacher] for pair in pairs],
                        **{extra: extras[extra] for extra in modules[0].extras})
                    continue
                for pair, module in zip(pairs, modules):
                    extras = dict(valid_mask=masks[pair.student], stride=pair.stride,
                                  gt_bboxes=gt_bboxes, generator=self._generator())
                    out = module(student_feats[pair.student], teacher_feats[pair.teacher],
                                 **{extra: extras[extra] for extra in module.extras})
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
