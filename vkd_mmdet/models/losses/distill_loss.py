"""The contract between a distiller and its losses: what a loss consumes, declared once."""
import math
from types import MappingProxyType
from typing import ClassVar, Mapping, Optional, Tuple

from mmengine.model import BaseModule

#: What one call of a loss consumes (``consumes``), as the distillers hand it over.
CONSUMES: Mapping[str, str] = MappingProxyType({
    'fpn': 'one paired neck level per call: student (N, C_s, H, W), teacher (N, C_t, H, W); '
           'the distiller builds one module per level',
    'fpn_levels': 'all paired neck levels in one call: lists of student (N, C_s, H_l, W_l) and '
                  'teacher (N, C_t, H_l, W_l); one module',
    'embeddings': 'per-sample embeddings: student (R, C_s), teacher (R, C_t); the RoI box-head '
                  'embeddings of a two-stage detector, the pooled features of a classifier',
    'logits': 'per-sample class logits: student (R, K), teacher (R, K); the RoI class logits '
              'of a two-stage detector, the image logits of a classifier',
    'dense_head': "the dense heads' outputs, all levels in one call: student and teacher "
                  '`HeadOutputs` (per level cls_scores (N, A*K, H, W), bbox_preds (N, A*B, H, '
                  'W), and the tower features before the activation of conv `tower_conv` when '
                  'the loss sets it); one module',
})

#: Per-step keyword arguments a loss may ask for (``extras``); which distiller gives which is
#: checked at build time (``DetectionDistiller.EXTRAS`` / ``ClassifierDistiller.EXTRAS``).
EXTRAS: Mapping[str, str] = MappingProxyType({
    'valid_mask': "(N, 1, H, W) bool, True on real image pixels (mmdet's batch padding False); "
                  "a list of those for 'fpn_levels'",
    'stride': "the level's stride in pixels (int)",
    'gt_bboxes': 'list of N (n_i, 4) ground-truth boxes, x1 y1 x2 y2 in pixels of the padded '
                 'batch (what the student head trains on)',
    'labels': '(R,) int64 class labels of the samples (RoI targets, or image labels)',
    'assignment': "the student dense head's own targets of the step, as its `get_targets` "
                  'computed them (GFL / ATSS layout): a `HeadAssignment`',
    'teacher_head': "a `TeacherDenseHead`: the frozen teacher head's priors, box decoding and "
                    'its tail from tower conv `tower_conv` (gradients reach the features it is '
                    "given, never the teacher's weights)",
    'generator': 'a torch.Generator (CPU) owned by the distiller and saved in its checkpoints: '
                 'random draws from it resume exactly',
})

#: Which width fills a channel argument: the student's or the teacher's.
WIDTH_SIDES = ('student', 'teacher')


class DistillLoss(BaseModule):
    """Base class of every distillation loss: the declaration a distiller reads at build time.

    A loss states on its class, once, what one call takes; the distiller reads that when it
    builds the loss and hands each call exactly that, nothing is inspected per step:

    - ``consumes`` (str): one of :data:`CONSUMES` (``'fpn'`` by default). ``forward`` takes
      ``(student, teacher, **extras)`` in the layout given there.
    - ``extras`` (tuple[str]): keyword arguments of ``forward`` the distiller fills in each step,
      from :data:`EXTRAS` (e.g. ``('valid_mask',)``). A distiller that cannot give one refuses the
      loss at build time.
    - ``channel_args`` (mapping): constructor arguments the distiller fills from the paired
      widths where the config leaves them out (``{'in_channels': 'student', 'out_channels':
      'teacher'}`` by default; a value the config gives must match). For ``'fpn'`` /
      ``'fpn_levels'`` the necks' widths, for ``'dense_head'`` the head towers'
      (``feat_channels``); other kinds state their widths in the config.
    - ``moved_args`` (mapping): constructor arguments of an earlier release and what to write
      instead; a config that still gives one is refused with that text.

    ``forward`` returns a scalar or a dict of named scalars; the distiller logs it as
    ``loss_<name>[_<key>][_p<k>]``. ``loss_weight`` must be a finite number >= 0: a negative
    weight would maximise the distillation loss.

    Example:
        >>> import torch
        >>> class L1Loss(DistillLoss):
        ...     extras = ('valid_mask',)
        ...     channel_args = {}
        ...     def forward(self, student, teacher, valid_mask=None):
        ...         return self.loss_weight * (student - teacher).abs().mean()
        >>> L1Loss(loss_weight=2.0)(torch.ones(1, 2, 3, 3), torch.zeros(1, 2, 3, 3))
        tensor(2.)
    """

    consumes: ClassVar[str] = 'fpn'
    extras: ClassVar[Tuple[str, ...]] = ()
    channel_args: ClassVar[Mapping[str, str]] = MappingProxyType(
        {'in_channels': 'student', 'out_channels': 'teacher'})
    moved_args: ClassVar[Mapping[str, str]] = MappingProxyType({})

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if cls.consumes not in CONSUMES:
            raise TypeError(f'{cls.__name__}.consumes={cls.consumes!r}: expected one of '
                            f'{sorted(CONSUMES)}')
        unknown = [extra for extra in cls.extras if extra not in EXTRAS]
        if unknown or isinstance(cls.extras, str):
            raise TypeError(f'{cls.__name__}.extras={cls.extras!r}: expected a tuple of '
                            f'{sorted(EXTRAS)}')
        bad = {arg: side for arg, side in cls.channel_args.items() if side not in WIDTH_SIDES}
        if bad:
            raise TypeError(f'{cls.__name__}.channel_args={dict(cls.channel_args)!r}: each value '
                            f'must be one of {WIDTH_SIDES}')

    def __init__(self, loss_weight: float = 1.0, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if isinstance(loss_weight, bool) or not isinstance(loss_weight, (int, float)) \
                or not math.isfinite(loss_weight) or loss_weight < 0:
            raise ValueError(f'{type(self).__name__}: loss_weight must be a finite number >= 0 '
                             f'(a negative weight maximises the distillation loss), got '
                             f'{loss_weight!r}')
        self.loss_weight = float(loss_weight)
