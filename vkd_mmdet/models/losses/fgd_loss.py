"""FGD: focal (foreground / background, attention-weighted) and global (context) distillation."""
from typing import Dict, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn import ContextBlock
from mmdet.registry import MODELS
from torch import Tensor

from ..projectors import build_projector
from ..utils import gt_cell_weights
from .distill_loss import DistillLoss
from .feature_loss_utils import check_loss_weights, check_same_shape


@MODELS.register_module()
class FGDLoss(DistillLoss):
    """FGD for one pair of FPN levels (Yang et al., "Focal and Global Knowledge Distillation for
    Detectors", CVPR 2022).

    With ``F`` a feature ``(C, H, W)`` of one image, ``s = f(F_S)`` the student after the optional
    ``projector`` ``f`` and ``t = F_T`` the teacher:

    - **attention** of a feature: spatial ``A^S = H W softmax_{hw}(mean_c |F| / T)``, channel
      ``A^C = C softmax_c(mean_{hw} |F| / T)``, at temperature ``T``.
    - **masks** from the ground truth (:func:`~vkd_mmdet.models.utils.gt_cell_weights`, boxes in
      padded-batch pixels over the level's stride): ``M = 1`` on the cells a box covers,
      foreground scale ``S = 1 / (cells of the box)`` (the smallest box where boxes overlap);
      background ``S = 1 / (number of background cells)``.
    - ``fg = alpha * sum M S A^S_t A^C_t (t - s)^2``; ``bg = beta * sum (1 - M) S A^S_t A^C_t
      (t - s)^2``: the teacher's attention weights both sides.
    - ``attention = gamma * (sum |A^S_t - A^S_s| + sum |A^C_t - A^C_s|)``.
    - ``global = lambda * sum (R_t(t) - R_s(s))^2`` where ``R(x) = x + W_2 ReLU(LN(W_1 sum_j
      softmax_j(W_k x_j) x_j))`` is a GcBlock (mmcv's :class:`~mmcv.cnn.ContextBlock`, ratio
      1/2, last conv zero-initialised), one per side, both trained with the student.

    Each term is summed over the batch and divided by the batch size ``N``, then multiplied by
    ``loss_weight``. The paper's weights (alpha / beta / gamma / lambda at temperature ``T``):
    one-stage 1e-3 / 5e-4 / 5e-4 / 5e-6 at 0.5 (the defaults); two-stage 5e-5 / 2.5e-5 / 5e-5 /
    5e-7 at 0.5; FCOS 1.6e-3 / 8e-4 / 8e-4 / 8e-6 at 0.8.

    **Padding** (``ignore_padding``, default): mmdet pads each image of a batch to the batch size;
    its padded cells are neither foreground nor background (they hold no image, and counting them
    as background would shrink every background weight by how much the batch happens to pad), and
    the attention softmaxes, the channel means, the GcBlock context and every sum run over the
    real cells of ``valid_mask``. So each image's terms are exactly the paper's on its real cells.
    ``ignore_padding=False`` treats padding as image (the authors' code).

    Args:
        in_channels (int): student channels ``C_s``.
        out_channels (int): teacher channels ``C_t``.
        alpha_fgd (float): foreground weight. Defaults to 1e-3.
        beta_fgd (float): background weight. Defaults to 5e-4.
        gamma_fgd (float): attention-mask weight. Defaults to 5e-4.
        lambda_fgd (float): global-relation weight. Defaults to 5e-6.
        temperature (float): ``T`` of both attentions. Defaults to 0.5.
        loss_weight (float): multiplies all four terms. Defaults to 1.0.
        projector (dict, optional): the map ``f`` of the student to ``C_t``
            (``dict(type='LinearAdapter')``: the release's 1x1 convolution). Defaults to None (no
            map: ``C_s == C_t``).
        ignore_padding (bool): use ``valid_mask`` when given. Defaults to True.
        init_cfg (dict, optional): mmengine init config.

    Shape:
        - student: ``(N, C_s, H, W)``; teacher: ``(N, C_t, H, W)`` (detached);
          valid_mask: ``(N, 1, H, W)`` bool or None; stride: int; gt_bboxes: N ``(n_i, 4)``.
        - output: dict of four scalars ``fg``, ``bg``, ``attention``, ``global`` (logged as
          ``loss_<name>_<term>_p<k>``).

    Note:
        The GcBlocks (``.context_student``, ``.context_teacher``) and the projector live in this
        module: they train with the student (and take the optimizer's weight decay) but are not
        part of it, so the exported student never holds them.

    Config:
        ``dict(type='FGDLoss', in_channels=256, out_channels=256, alpha_fgd=1e-3, beta_fgd=5e-4,
        gamma_fgd=5e-4, lambda_fgd=5e-6, temperature=0.5)``
    """

    extras = ('valid_mask', 'stride', 'gt_bboxes')

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 alpha_fgd: float = 1e-3,
                 beta_fgd: float = 5e-4,
                 gamma_fgd: float = 5e-4,
                 lambda_fgd: float = 5e-6,
                 temperature: float = 0.5,
                 loss_weight: float = 1.0,
                 projector: Optional[Mapping] = None,
                 ignore_padding: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(loss_weight, init_cfg)
        check_loss_weights('FGDLoss', alpha_fgd=alpha_fgd, beta_fgd=beta_fgd,
                           gamma_fgd=gamma_fgd, lambda_fgd=lambda_fgd)
        if not temperature > 0:
            raise ValueError(f'FGDLoss: temperature must be > 0, got {temperature!r}')
        self.projector = build_projector(projector, in_channels, out_channels, 'FGDLoss')
        self.context_student = ContextBlock(out_channels, ratio=0.5)
        self.context_teacher = ContextBlock(out_channels, ratio=0.5)
        self.weights = {'fg': alpha_fgd, 'bg': beta_fgd, 'attention': gamma_fgd,
                        'global': lambda_fgd}
        self.temperature = temperature
        self.ignore_padding = ignore_padding

    def forward(self, student: Tensor, teacher: Tensor, valid_mask: Optional[Tensor] = None,
                stride: Optional[int] = None,
                gt_bboxes: Optional[Sequence[Tensor]] = None) -> Dict[str, Tensor]:
        student = self.projector(student)
        check_same_shape('FGDLoss', student, teacher)
        num, _, height, width = student.shape
        if stride is None or gt_bboxes is None:
            raise ValueError('FGDLoss: needs the level\'s `stride` and the `gt_bboxes` of the '
                             'batch (DetectionDistiller gives both)')
        if len(gt_bboxes) != num:
            raise ValueError(f'FGDLoss: gt_bboxes holds {len(gt_bboxes)} images, the features '
                             f'{num}')
        mask = valid_mask if self.ignore_padding else None
        valid = torch.ones_like(student[:, :1], dtype=torch.bool) if mask is None else mask
        foreground = gt_cell_weights(gt_bboxes, (height, width), stride,
                                     student.dtype).to(student.device) * valid
        background = (valid & (foreground == 0)).to(student.dtype)
        background = background / background.sum((2, 3), keepdim=True).clamp(min=1)

        spatial_t, channel_t = self.attention(teacher, mask)
        spatial_s, channel_s = self.attention(student, mask)
        weighted = (student - teacher).square() * spatial_t * channel_t[:, :, None, None]
        attention = ((spatial_s - spatial_t).abs() * valid).sum() \
            + (channel_s - channel_t).abs().sum()
        relation = context_block(self.context_teacher, teacher, mask) \
            - context_block(self.context_student, student, mask)
        sums = {'fg': (weighted * foreground).sum(), 'bg': (weighted * background).sum(),
                'attention': attention, 'global': (relation.square() * valid).sum()}
        return {key: self.loss_weight * self.weights[key] * value / num
                for key, value in sums.items()}

    def attention(self, feature: Tensor, valid_mask: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
        """Spatial ``(N, 1, H, W)`` and channel ``(N, C)`` attention of ``feature``, over the
        real cells of ``valid_mask`` (each averages 1 over them)."""
        magnitude = feature.abs()
        spatial = magnitude.mean(1, keepdim=True).flatten(1) / self.temperature
        if valid_mask is None:
            cells = feature.new_full((feature.shape[0], 1), feature.shape[2] * feature.shape[3])
            channel = magnitude.mean((2, 3))
        else:
            cells = valid_mask.flatten(1).sum(1, keepdim=True).to(feature)
            spatial = spatial.masked_fill(~valid_mask.flatten(1), float('-inf'))
            channel = (magnitude * valid_mask).sum((2, 3)) / cells
        spatial = cells * F.softmax(spatial, dim=1)
        channel = feature.shape[1] * F.softmax(channel / self.temperature, dim=1)
        return spatial.view_as(feature[:, :1]), channel

    def extra_repr(self) -> str:
        weights = ', '.join(f'{key}={value:g}' for key, value in self.weights.items())
        return f'{weights}, temperature={self.temperature:g}'


def context_block(block: ContextBlock, feature: Tensor, valid_mask: Optional[Tensor]) -> Tensor:
    """``block(feature)`` (GcBlock with attention pooling and channel-add fusion) whose context
    pools over the real cells of ``valid_mask`` only (mmcv's pools over every cell).

    ``out = x + channel_add_conv(sum_j softmax_j(conv_mask(x)_j) x_j)``, the softmax over the
    cells of ``valid_mask`` (all cells when None).
    """
    logits = block.conv_mask(feature).flatten(1)  # (N, H*W)
    if valid_mask is not None:
        logits = logits.masked_fill(~valid_mask.flatten(1), float('-inf'))
    weights = F.softmax(logits, dim=1)
    context = torch.einsum('nck,nk->nc', feature.flatten(2), weights)[:, :, None, None]
    return feature + block.channel_add_conv(context)

