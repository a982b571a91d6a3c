"""ND loss (KD++): student embeddings pulled onto the teacher's class-mean directions."""
from typing import Mapping, Optional

import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor

from ..projectors import build_projector
from .distill_loss import DistillLoss
from .feature_loss_utils import check_same_shape


@MODELS.register_module()
class NDLoss(DistillLoss):
    """Norm-and-direction loss of KD++ (Wang et al., "Improving Knowledge Distillation via
    Regularizing Feature Norm and Direction", ECCV 2024), on RoI embeddings or pooled features.

    Per sample ``r`` of class ``y``: ``l_r = 1 - <s_r, c_y / ||c_y||> / max(||s_r||, ||t_r||)``,
    ``loss = w * mean_r l_r``. ``s`` is the student embedding (when the widths differ, through
    a ``projector``: KD++'s is BN1d -> Dropout -> Linear), ``t`` the teacher's embedding of
    the same sample (only its norm enters), ``c_y`` the teacher's class-mean embedding, computed
    offline over the training set by ``tools/compute_class_centers.py`` and loaded as a buffer
    (never averaged per batch). While ``||s|| < ||t||`` the denominator is the teacher norm and
    the loss also grows the student's norm along ``c_y``; once ``||s|| >= ||t||`` it is
    ``1 - cos(s, c_y)``, direction only.

    It consumes ``'embeddings'`` with the ``labels`` extra: in :class:`DetectionDistiller` the
    samples are the RoIs sampled by the student's RoI head, ``s`` / ``t`` the box-head
    embeddings after ReLU (the input of ``fc_cls``) of student and teacher on those RoIs, ``y``
    the RoI labels (``num_classes`` = background, as in mmdet). In :class:`ClassifierDistiller` (a
    ``feature_losses`` entry, ``background=False``) the samples are the images, ``s`` / ``t`` the
    penultimate pooled features, ``y`` the ground-truth labels.

    Args:
        num_classes (int): foreground classes.
        in_channels (int): student embedding width ``D_s``.
        out_channels (int): teacher embedding width ``D_t``.
        class_centers (str, optional): file written by ``tools/compute_class_centers.py``.
            None leaves zero centres to be filled from a checkpoint; training with them raises.
        loss_weight (float): ``w``. Defaults to 1.0 (KD++ uses 1.5 for R101 -> R18).
        projector (dict, optional): the student's map ``D_s -> D_t`` (``.projector``); KD++'s
            for different widths is ``dict(type='LinearAdapter', norm=True, dropout=0.5)``.
            Defaults to None (``D_s == D_t``).
        background (bool): keep a centre for the background class ``num_classes`` (detection
            RoIs); False for classification. The centres have ``num_classes + background`` rows.
            Defaults to True.
        init_cfg (dict, optional): mmengine init config.

    Shape:
        - student: ``(R, D_s)``; teacher: ``(R, D_t)`` (detached); labels: ``(R,)`` long.
        - output: scalar.

    Config:
        ``dict(type='NDLoss', num_classes=80, in_channels=1024, out_channels=1024,
        class_centers='work_dirs/class_centers/faster_rcnn_r101.pth', loss_weight=1.5)``;
        classification: ``dict(type='mmdet.NDLoss', num_classes=1000, background=False,
        in_channels=512, out_channels=512, class_centers=...)``
    """

    consumes = 'embeddings'
    extras = ('labels',)
    channel_args = {}
    moved_args = {'dropout': "projector=dict(type='LinearAdapter', norm=True, dropout=...)"}

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 out_channels: int,
                 class_centers: Optional[str] = None,
                 loss_weight: float = 1.0,
                 projector: Optional[Mapping] = None,
                 background: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(loss_weight, init_cfg)
        self.projector = build_projector(projector, in_channels, out_channels, 'NDLoss')
        num_rows = num_classes + int(background)
        self.register_buffer('class_centers', torch.zeros(num_rows, out_channels))
        if class_centers is not None:
            self.class_centers.copy_(load_class_centers(class_centers, num_rows, out_channels))
        self._centers_checked = class_centers is not None

    def forward(self, student: Tensor, teacher: Tensor, labels: Tensor) -> Tensor:
        if not self._centers_checked:
            if not self.class_centers.any():
                raise RuntimeError('NDLoss: the class centres are all zero; compute them with '
                                   '`python tools/compute_class_centers.py CONFIG` and set '
                                   '`class_centers` in the loss config')
            self._centers_checked = True
        student = self.projector(student)
        check_same_shape('NDLoss', student, teacher, layout='(R, D)', kind='embeddings')
        if labels.shape != student.shape[:1]:
            raise ValueError(f'NDLoss: labels {tuple(labels.shape)} must be (R,) for the '
                             f'{student.shape[0]} embeddings')
        if student.shape[0] == 0:
            return student.sum() * 0
        directions = F.normalize(self.class_centers[labels], dim=1)
        norm = torch.maximum(student.norm(dim=1), teacher.norm(dim=1))
        return self.loss_weight * (1 - (student * directions).sum(dim=1) / norm).mean()


def load_class_centers(path: str, num_rows: int, width: int) -> Tensor:
    """The ``centers`` tensor of a class-centre file, checked against the loss config."""
    try:
        centers = torch.load(path, map_location='cpu', weights_only=True)['centers']
    except FileNotFoundError as error:
        raise FileNotFoundError(f'NDLoss: class_centers={path!r} does not exist; compute it with '
                                '`python tools/compute_class_centers.py CONFIG`') from error
    if tuple(centers.shape) != (num_rows, width):
        raise ValueError(f'NDLoss: class_centers={path!r} holds centres of shape '
                         f'{tuple(centers.shape)}, expected (num_classes + background, '
                         f'out_channels) = ({num_rows}, {width})')
    return centers
