"""Distillation for mmpretrain classifiers: pooled-feature and logit losses, frozen teacher."""
import copy
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn as nn
from mmpretrain.models.classifiers import TimmClassifier
from mmpretrain.models.heads import DeiTClsHead
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import Tensor

from ...compat.mmpretrain import cls_head_loss, deit_head_logits, preprocessor_normalization
from ...utils.model_cfg import build_model, resolve_model_cfg
from .base_distiller import BaseDistiller, isolated_rng
from .loss_builder import distill_loss_class

ForwardResults = Union[Dict[str, Tensor], List[DataSample], Tensor, Tuple[Tensor, ...]]
#: What this distiller gives a loss of each kind, besides the two sides' inputs: pooled features
#: (``'embeddings'``, or ``'fpn'``: as ``(N, C, 1, 1)`` maps, no padding) and logits.
EXTRAS = {'fpn': ('valid_mask',), 'embeddings': ('labels',), 'logits': ('labels',)}
#: Which kinds each config section takes.
SECTION_KINDS = {'feature_losses': ('embeddings', 'fpn'), 'logit_losses': ('logits',)}


@MODELS.register_module()
class ClassifierDistiller(BaseDistiller):
    """Train an mmpretrain student classifier under a frozen teacher classifier.

    One training step:

    1. The student's data preprocessor normalises the raw batch and applies its batch augments
       (Mixup / CutMix). The teacher sees *the same* augmented images, converted to its own
       normalisation (``x_t = (x_s * std_s + mean_s - mean_t) / std_t``, channels flipped if
       only one side converts BGR to RGB): both augments commute with a per-channel affine
       map, so this is exact. The teacher's preprocessor does not run.
    2. The teacher gives its pooled feature (``(N, C_t)``) and its logits (BatchNorms folded,
       under ``inference_mode``, at ``teacher_precision``: :meth:`teacher_forward`).
    3. The student gives its pooled feature, its class logits and its distillation logits:

       - with mmpretrain's ``DeiTClsHead`` (two linear heads) the backbone must output
         ``(pooled patch tokens, cls token, distillation token)`` (:class:`ConvStemDeiT`); the
         class logits come from the cls head, the distillation logits from the dist head;
       - with any other head the backbone / neck output is the pooled feature (``(N, C)``, or
         ``(N, C, H, W)`` averaged over space) and the head's logits serve as both.

    4. Losses: the student head's own classification loss on the class logits (``loss_cls``,
       soft Mixup targets included), every ``feature_losses`` entry on
       ``(student feature, teacher feature)``, every ``logit_losses`` entry on
       ``(distillation logits, teacher logits)``, logged as ``loss_<name>``. Each loss is a
       :class:`~vkd_mmdet.models.losses.DistillLoss` and gets what its class declares
       (:data:`EXTRAS`): a ``feature_losses`` entry that consumes ``'embeddings'`` gets the
       ``(N, C)`` features, one that consumes ``'fpn'`` gets them as ``(N, C, 1, 1)`` maps
       (``mmdet.SRDLoss``: BatchNorm over a batch of 1x1 maps is BatchNorm over the pooled
       features) with ``valid_mask=None``; a loss that lists the ``labels`` extra receives the
       ground-truth labels ``(N,)`` (e.g. the ND loss of KD++; hard labels required, so no
       Mixup / CutMix with it).

    ``predict`` / ``tensor`` modes, validation and test run the student alone (``DeiTClsHead``
    averages its two heads there).

    Args:
        student (dict): mmpretrain classifier config of the student, or
            ``dict(cfg_path='mmpretrain::...', **overrides)`` to take the ``model`` of a config.
        teacher (dict): the same for the teacher: an ``ImageClassifier`` (e.g. a ResNet, or a
            timm network through ``TIMMBackbone`` + ``GlobalAveragePooling``) or a
            ``TimmClassifier`` (whose checkpoint is a plain timm state dict).
        teacher_ckpt (str): path or URL of the teacher's weights.
        feature_losses (dict[str, dict], optional): name -> config of a loss on pooled
            features (it consumes ``'embeddings'`` or ``'fpn'``).
        logit_losses (dict[str, dict], optional): name -> config of a loss on logits (it
            consumes ``'logits'``).
        teacher_ckpt_strict (bool): refuse missing / unexpected teacher keys. Defaults to True.
        teacher_ckpt_trusted (bool): allow a teacher checkpoint that needs full unpickling.
            Defaults to False.
        data_preprocessor (dict, optional): the preprocessor mmpretrain configs state at top
            level (mmengine's Runner hands it to the model); student and teacher configs that
            state none use it. The distiller's own preprocessor only moves data to the device.
        init_cfg (dict, optional): mmengine init config.
        load_strict (bool): refuse a checkpoint of another model on resume / load_from (see
            :class:`BaseDistiller`). Defaults to True.
        teacher_precision (str): ``'fp32'``, ``'bf16'`` or ``'fp16'`` (CUDA only) for the
            teacher forward; losses stay float32. Defaults to 'fp32'.

    Config:
        .. code-block:: python

            model = dict(
                type='ClassifierDistiller',
                student=dict(type='ImageClassifier',
                             backbone=dict(type='ConvStemDeiT', arch='deit-tiny'),
                             head=dict(type='DeiTClsHead', num_classes=1000, in_channels=192)),
                teacher=dict(type='TimmClassifier', model_name='regnety_160'),
                teacher_ckpt='https://dl.fbaipublicfiles.com/deit/regnety_160-a5fe301d.pth',
                feature_losses=dict(
                    vkd=dict(type='VkDClsLoss', in_channels=192, out_channels=3024)),
                logit_losses=dict(kd=dict(type='LogitKDLoss', temperature=1.0)))
    """

    def __init__(self,
                 student: dict,
                 teacher: dict,
                 teacher_ckpt: Optional[str] = None,
                 feature_losses: Optional[Dict[str, dict]] = None,
                 logit_losses: Optional[Dict[str, dict]] = None,
                 teacher_ckpt_strict: bool = True,
                 teacher_ckpt_trusted: bool = False,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None,
                 load_strict: bool = True,
                 teacher_precision: str = 'fp32') -> None:
        student = resolve_model_cfg(student, 'student')
        teacher = resolve_model_cfg(teacher, 'teacher')
        for cfg in (student, teacher):
            if isinstance(cfg, dict) and data_preprocessor is not None:
                cfg.setdefault('data_preprocessor', copy.deepcopy(data_preprocessor))
        student_model = build_model(student, MODELS)
        with isolated_rng():
            teacher_model = build_model(teacher, MODELS)
        for key, model in (('student', student_model), ('teacher', teacher_model)):
            if not isinstance(model, TimmClassifier) and getattr(model, 'head', None) is None:
                raise ValueError(f'ClassifierDistiller: `{key}` must be an mmpretrain classifier '
                                 f'with a head (ImageClassifier / TimmClassifier), got '
                                 f'{type(model).__name__}')
        if isinstance(student_model, TimmClassifier):
            raise ValueError('ClassifierDistiller: `student` must be an ImageClassifier (backbone '
                             '[+ neck] + head); a TimmClassifier student is not supported')
        super().__init__(student_model, teacher_model, teacher_ckpt, teacher_ckpt_strict,
                         teacher_ckpt_trusted, init_cfg, load_strict,
                         teacher_precision=teacher_precision)
        if not feature_losses and not logit_losses:
            raise ValueError('ClassifierDistiller: give `feature_losses` and/or `logit_losses`, '
                             "e.g. feature_losses=dict(vkd=dict(type='VkDClsLoss', "
                             "in_channels=192, out_channels=3024))")
        with isolated_rng():
            self.feature_losses = self._build_losses(feature_losses, 'feature_losses')
            self.logit_losses = self._build_losses(logit_losses, 'logit_losses')
        overlap = set(self.feature_losses) & set(self.logit_losses)
        if overlap or 'cls' in set(self.feature_losses) | set(self.logit_losses):
            raise ValueError(f'ClassifierDistiller: loss names must be unique and not "cls" '
                             f'(logged as loss_<name>), got {sorted(overlap) or ["cls"]}')

    def _build_losses(self, cfgs: Optional[Dict[str, dict]], key: str) -> nn.ModuleDict:
        modules = nn.ModuleDict()
        for name, cfg in (cfgs or {}).items():
            loss_cls = distill_loss_class(MODELS, cfg, f'{key}.{name}', EXTRAS)
            if loss_cls.consumes not in SECTION_KINDS[key]:
                raise ValueError(f'{key}.{name}: {loss_cls.__name__} consumes '
                                 f'{loss_cls.consumes!r}; {key} takes losses that consume '
                                 f'{SECTION_KINDS[key]}')
            modules[name] = MODELS.build(copy.deepcopy(dict(cfg)))
        return modules

    def forward(self,
                inputs: Tensor,
                data_samples: Optional[List[DataSample]] = None,
                mode: str = 'tensor') -> ForwardResults:
        """``inputs`` / ``data_samples``: the raw batch (the student preprocesses it)."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        batch = self.student.data_preprocessor(
            dict(inputs=inputs, data_samples=data_samples), False)
        if mode in ('predict', 'tensor'):
            return self.student(batch['inputs'], batch['data_samples'], mode=mode)
        raise RuntimeError(f'Invalid mode "{mode}". Only supports loss, predict and tensor mode')

    def loss(self, inputs: Tensor, data_samples: List[DataSample]) -> Dict[str, Tensor]:
        batch = self.student.data_preprocessor(
            dict(inputs=inputs, data_samples=data_samples), True)
        student_inputs, data_samples = batch['inputs'], batch['data_samples']
        teacher_feat, teacher_logits = self.teacher_forward(self.teacher_outputs, renormalize(
            student_inputs, self.student.data_preprocessor, self.teacher.data_preprocessor))
        student_feat, cls_logits, dist_logits = self.student_outputs(student_inputs)

        losses = cls_head_loss(self.student.head, cls_logits, data_samples)
        losses['loss_cls'] = losses.pop('loss')
        with torch.autocast(device_type=student_inputs.device.type, enabled=False):
            for modules, student_out, teacher_out in (
                    (self.feature_losses, student_feat, teacher_feat),
                    (self.logit_losses, dist_logits, teacher_logits)):
                for name, module in modules.items():
                    args = [student_out.float(), teacher_out.float().detach()]
                    extras = {}
                    if module.consumes == 'fpn':
                        args = [arg[:, :, None, None] for arg in args]
                        extras['valid_mask'] = None
                    if 'labels' in module.extras:
                        extras['labels'] = _hard_labels(data_samples, name)
                    losses[f'loss_{name}'] = module(*args, **extras)
        return losses

    def student_outputs(self, inputs: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """``(pooled feature (N, C_s), class logits (N, K), distillation logits (N, K))``."""
        feats = self.student.extract_feat(inputs)
        head = self.student.head
        if isinstance(head, DeiTClsHead):
            last = feats[-1]
            if not (isinstance(last, (tuple, list)) and len(last) == 3):
                raise ValueError(
                    'ClassifierDistiller: a DeiTClsHead student needs a backbone that outputs '
                    '(pooled patch tokens, cls token, distillation token), e.g. '
                    "dict(type='ConvStemDeiT', out_type='cls_token')")
            cls_logits, dist_logits = deit_head_logits(head, feats)
            return last[0], cls_logits, dist_logits
        logits = head(feats)
        return _pooled(feats[-1], 'student'), logits, logits

    def teacher_probe(self, teacher: nn.Module) -> Tuple[Tensor]:
        """The teacher's logits on the probe input (they depend on its whole network)."""
        return (teacher(self.probe_inputs(), mode='tensor'),)

    def teacher_outputs(self, inputs: Tensor) -> Tuple[Tensor, Tensor]:
        """``(pooled feature (N, C_t), logits (N, K))`` of the teacher (run via teacher_forward)."""
        if isinstance(self.teacher, TimmClassifier):
            feature_map = self.teacher.model.forward_features(inputs)
            return (self.teacher.model.forward_head(feature_map, pre_logits=True),
                    self.teacher.model.forward_head(feature_map))
        feats = self.teacher.extract_feat(inputs)
        return _pooled(feats[-1], 'teacher'), self.teacher.head(feats)


def renormalize(inputs: Tensor, source: nn.Module, target: nn.Module) -> Tensor:
    """Images normalised by preprocessor ``source`` re-expressed in ``target``'s normalisation.

    Exact for anything that commutes with a per-channel affine map (Mixup, CutMix, crops).
    """
    src_mean, src_std, src_flip = preprocessor_normalization(source)
    dst_mean, dst_std, dst_flip = preprocessor_normalization(target)
    if src_flip == dst_flip and _same(src_mean, dst_mean) and _same(src_std, dst_std):
        return inputs
    if src_mean is not None:
        inputs = inputs * src_std.to(inputs) + src_mean.to(inputs)
    if src_flip != dst_flip:
        inputs = inputs.flip(1)
    if dst_mean is not None:
        inputs = (inputs - dst_mean.to(inputs)) / dst_std.to(inputs)
    return inputs


def _pooled(feat, who: str) -> Tensor:
    if isinstance(feat, Tensor) and feat.dim() == 2:
        return feat
    if isinstance(feat, Tensor) and feat.dim() == 4:
        return feat.mean(dim=(2, 3))
    shape = tuple(feat.shape) if isinstance(feat, Tensor) else type(feat).__name__
    raise ValueError(f'ClassifierDistiller: the {who} backbone/neck output must be a pooled '
                     f'(N, C) or (N, C, H, W) feature, got {shape} (add a GlobalAveragePooling '
                     'neck)')


def _hard_labels(data_samples: List[DataSample], name: str) -> Tensor:
    if 'gt_score' in data_samples[0]:
        raise ValueError(f'loss {name!r} needs hard labels, but the batch carries soft scores '
                         '(batch augments such as Mixup / CutMix): drop them from train_cfg')
    return torch.cat([sample.gt_label for sample in data_samples])


def _same(a: Optional[Tensor], b: Optional[Tensor]) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a.shape == b.shape and torch.equal(a.cpu(), b.cpu())
