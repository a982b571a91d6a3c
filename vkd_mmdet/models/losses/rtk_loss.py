"""RTK: attention-based feature distillation over all FPN levels with representative links."""
import math
from typing import List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor

from .distill_loss import DistillLoss


def _spatial_attention(feature: Tensor, valid_mask: Optional[Tensor]) -> Tensor:
    """Channel mean of the squared feature, ``(N, 1, H, W)``, zero on padded cells."""
    attention = feature.square().mean(dim=1, keepdim=True)
    return attention if valid_mask is None else attention * valid_mask.to(attention.dtype)


@MODELS.register_module()
class RTKLoss(DistillLoss):
    """Attention-based feature distillation with representative teacher keys, over all distilled
    FPN levels at once (Yang, Kao, Huang, "Representative Teacher Keys for Knowledge Distillation
    Model Compression Based on Attention Mechanism"; built on AFD, Ji et al., "Show, Attend and
    Distill", AAAI 2021).

    As in AFD, every teacher level ``i`` attends over every student level ``j``:

    - query ``q_i = BN(Linear(channel mean of T_i))``, key ``k_j = ReLU(BN(Linear(channel mean of
      S_j)))``, a bilinear map ``B`` turns ``k_j`` into one key per teacher level, plus learned
      level embeddings: ``logit_ij = (<B(k_j)_i, q_i> + <p_t_i, p_s_j>) / sqrt(qk_dim)``;
    - values are spatial attention maps: the channel mean of the squared feature, L2-normalised
      over pixels; the student map of level ``j`` is average-pooled to level ``i``'s size;
    - ``loss = w * sum_i mean_n sum_j a_ij * mean over pixels (v_s_ij - v_t_i)^2`` with
      ``a_i = softmax_j(logit_ij)``.

    Representative links (our rule; the paper publishes none): for each sample and teacher level
    ``i``, only the ``num_keys`` student levels whose (pooled, normalised) map is most similar to
    the teacher's map (cosine similarity, chosen without gradient) enter the softmax; the other
    links get no attention, so uninformative level pairs are filtered out. ``num_keys`` equal to
    the number of levels is plain AFD. With ``ignore_padding`` padded cells are zeroed in every
    attention map before normalisation (channel means for queries and keys include them).

    It consumes ``'fpn_levels'``: :class:`DetectionDistiller` builds one module for all levels of
    the entry's ``levels`` and calls it once with the lists of those levels and their masks.

    Args:
        in_channels (int): student channels ``C_s`` (every FPN level).
        out_channels (int): teacher channels ``C_t`` (every FPN level).
        num_levels (int): number of distilled levels (length of the lists given to forward).
        qk_dim (int): query / key width. Defaults to 128 (AFD).
        num_keys (int): representative student levels per teacher level. Defaults to 2 (ours).
        loss_weight (float): ``w``. Defaults to 200.0 (AFD's beta).
        ignore_padding (bool): use the valid masks when given. Defaults to True.
        init_cfg (dict, optional): mmengine init config.

    Shape:
        - students: list of ``(N, C_s, H_l, W_l)``; teachers: list of ``(N, C_t, H_l, W_l)``
          (detached); valid_mask: list of ``(N, 1, H_l, W_l)`` bool or None.
        - output: scalar.

    Note:
        Queries and keys go through BatchNorm1d over the batch: training needs 2+ images per GPU.

    Config:
        ``dict(type='RTKLoss', in_channels=256, out_channels=256, num_levels=5, num_keys=2)``
    """

    consumes = 'fpn_levels'
    extras = ('valid_mask',)

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 num_levels: int,
                 qk_dim: int = 128,
                 num_keys: int = 2,
                 loss_weight: float = 200.0,
                 ignore_padding: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(loss_weight, init_cfg)
        if not 1 <= num_keys <= num_levels:
            raise ValueError(f'RTKLoss: num_keys={num_keys} must be in 1..num_levels '
                             f'({num_levels})')
        self.query_layers = nn.ModuleList(
            nn.Sequential(nn.Linear(out_channels, qk_dim), nn.BatchNorm1d(qk_dim))
            for _ in range(num_levels))
        self.key_layers = nn.ModuleList(
            nn.Sequential(nn.Linear(in_channels, qk_dim), nn.BatchNorm1d(qk_dim), nn.ReLU())
            for _ in range(num_levels))
        self.bilinear = nn.Sequential(nn.Linear(qk_dim, qk_dim * num_levels),
                                      nn.BatchNorm1d(qk_dim * num_levels))
        self.teacher_embedding = nn.Parameter(nn.init.xavier_normal_(
            torch.empty(num_levels, qk_dim)))
        self.student_embedding = nn.Parameter(nn.init.xavier_normal_(
            torch.empty(num_levels, qk_dim)))
        self.num_levels = num_levels
        self.qk_dim = qk_dim
        self.num_keys = num_keys
        self.ignore_padding = ignore_padding

    def attention_logits(self, students: Sequence[Tensor], teachers: Sequence[Tensor]) -> Tensor:
        """``(N, T, S)`` logits of teacher level (query) over student level (key)."""
        batch = students[0].shape[0]
        queries = torch.stack([layer(t.mean(dim=(2, 3)))
                               for layer, t in zip(self.query_layers, teachers)], dim=1)
        keys = torch.stack([layer(s.mean(dim=(2, 3)))
                            for layer, s in zip(self.key_layers, students)], dim=1)
        keys = self.bilinear(keys.flatten(0, 1)).view(batch, self.num_levels, self.num_levels,
                                                      self.qk_dim)
        logits = torch.einsum('bstq,btq->bts', keys, queries)
        logits = logits + self.teacher_embedding @ self.student_embedding.t()
        return logits / math.sqrt(self.qk_dim)

    def forward(self, students: Sequence[Tensor], teachers: Sequence[Tensor],
                valid_mask: Optional[Sequence[Optional[Tensor]]] = None) -> Tensor:
        if not len(students) == len(teachers) == self.num_levels:
            raise ValueError(f'RTKLoss: got {len(students)} student and {len(teachers)} teacher '
                             f'levels, configured num_levels={self.num_levels}')
        masks: List[Optional[Tensor]] = list(valid_mask) if (
            self.ignore_padding and valid_mask is not None) else [None] * self.num_levels
        student_maps = [_spatial_attention(s, m) for s, m in zip(students, masks)]
        logits = self.attention_logits(students, teachers)
        loss = logits.new_zeros(())
        for i, (teacher, mask) in enumerate(zip(teachers, masks)):
            value_t = F.normalize(_spatial_attention(teacher, mask).flatten(1), dim=1)
            pooled = [F.adaptive_avg_pool2d(m, teacher.shape[2:]) for m in student_maps]
            if mask is not None:
                pooled = [p * mask.to(p.dtype) for p in pooled]
            value_s = F.normalize(torch.cat([p.flatten(1)[:, None] for p in pooled], 1), dim=2)
            with torch.no_grad():
                similarity = torch.einsum('bsp,bp->bs', value_s, value_t)
                keep = torch.zeros_like(similarity, dtype=torch.bool).scatter_(
                    1, similarity.topk(self.num_keys, dim=1).indices, True)
            attention = logits[:, i].masked_fill(~keep, float('-inf')).softmax(dim=1)
            diff = (value_s - value_t[:, None]).square().mean(dim=2)
            loss = loss + (attention * diff).sum(dim=1).mean()
        return self.loss_weight * loss
