"""DeiT with a convolutional stem and a mean-of-patches distillation token (the VkD student)."""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from mmpretrain.models.backbones import DistilledVisionTransformer
from mmpretrain.models.utils import resize_pos_embed
from mmpretrain.registry import MODELS
from torch import Tensor


class ConvStem(BaseModule):
    """Patch embedding by convolutions: ``7x7/2 -> 3x3 -> 3x3`` (BN + ReLU each) ``->``
    ``(patch_size/2)`` non-overlapping projection: total stride ``patch_size``.

    The stem of co-advise / CiVT that the VkD authors use for their DeiT students. It plays the
    role of mmpretrain's ``PatchEmbed``: ``forward`` returns ``(tokens (N, L, C), (h, w))`` and
    ``init_out_size`` is the token grid of the default input size.

    Args:
        in_channels (int): image channels. Defaults to 3.
        embed_dims (int): token width.
        stem_channels (int): width of the three stem convolutions. Defaults to 64.
        patch_size (int): total stride; must be even. Defaults to 16.
        input_size (int | tuple[int, int]): default input size. Defaults to 224.
        norm_cfg (dict, optional): norm of the stem convolutions. Defaults to ``dict(type='BN')``.
    """

    def __init__(self,
                 embed_dims: int,
                 in_channels: int = 3,
                 stem_channels: int = 64,
                 patch_size: int = 16,
                 input_size=224,
                 norm_cfg: Optional[dict] = None,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        norm_cfg = norm_cfg or dict(type='BN')
        if patch_size % 2:
            raise ValueError(f'ConvStem: patch_size must be even (a stride-2 stem conv, then a '
                             f'patch_size/2 projection), got {patch_size}')
        conv = dict(bias=False, norm_cfg=norm_cfg)
        self.conv = nn.Sequential(
            ConvModule(in_channels, stem_channels, 7, stride=2, padding=3, **conv),
            ConvModule(stem_channels, stem_channels, 3, padding=1, **conv),
            ConvModule(stem_channels, stem_channels, 3, padding=1, **conv))
        self.proj = nn.Conv2d(stem_channels, embed_dims, patch_size // 2, stride=patch_size // 2)
        height, width = (input_size, input_size) if isinstance(input_size, int) else input_size
        self.init_out_size = (height // patch_size, width // patch_size)

    def init_weights(self) -> None:
        super().init_weights()
        if self.init_cfg is None:
            # As the authors: He-normal convolutions (nn.Sequential hides the ConvModules from
            # mmengine's recursive init_weights).
            for module in self.modules():
                if isinstance(module, nn.Conv2d):
                    nn.init.kaiming_normal_(module.weight)

    def forward(self, x: Tensor) -> Tuple[Tensor, Tuple[int, int]]:
        x = self.proj(self.conv(x))
        return x.flatten(2).transpose(1, 2), tuple(x.shape[2:])


@MODELS.register_module()
class ConvStemDeiT(DistilledVisionTransformer):
    """The DeiT student of VkD (Miles, Elezi, Deng, "VkD: Improving Knowledge Distillation using
    Orthogonal Projections", CVPR 2024): mmpretrain's ``DistilledVisionTransformer`` with

    - a convolutional stem (:class:`ConvStem`) instead of the linear patch embedding, and
    - a distillation token that is the mean of the embedded patch tokens (computed per image,
      then given its own position embedding) instead of a learnt token.

    Output (``out_type='cls_token'``): per stage in ``out_indices`` a triple
    ``(mean of the final patch tokens, cls token, distillation token)``, each ``(N, C)``.
    mmpretrain's ``DeiTClsHead`` reads the last two (it skips a leading element) and at
    inference averages its two linear heads; the distiller matches the first to the teacher's
    pooled feature. Other ``out_type`` values behave as in ``VisionTransformer``.

    Args:
        arch (str | dict): ViT size, as in mmpretrain (``'deit-tiny'``, ``'deit-small'``, ...).
        stem_channels (int): width of the stem convolutions. Defaults to 64.
        stem_norm_cfg (dict, optional): norm of the stem convolutions.
            Defaults to ``dict(type='BN')``.
        **kwargs: the other arguments of ``VisionTransformer`` (``img_size``, ``patch_size``
            (the stem's total stride, default 16), ``drop_path_rate``, ``out_indices``, ...).
            ``patch_cfg`` is not used.

    Shape:
        - Input: ``(N, 3, H, W)``, ``H`` and ``W`` multiples of ``patch_size``.
        - Output: tuple of ``((N, C), (N, C), (N, C))`` for ``out_type='cls_token'``.

    Config:
        ``dict(type='ConvStemDeiT', arch='deit-tiny', img_size=224, drop_path_rate=0.1)``
    """

    def __init__(self,
                 arch='deit-tiny',
                 stem_channels: int = 64,
                 stem_norm_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        if 'patch_cfg' in kwargs:
            raise ValueError('ConvStemDeiT: `patch_cfg` configures the linear patch embedding, '
                             'which the conv stem replaces; use stem_channels / stem_norm_cfg')
        super().__init__(arch=arch, **kwargs)
        patch_size = kwargs.get('patch_size', 16)
        self.patch_embed = ConvStem(self.embed_dims, kwargs.get('in_channels', 3), stem_channels,
                                    patch_size, kwargs.get('img_size', 224), stem_norm_cfg)
        if self.patch_embed.init_out_size != tuple(self.patch_resolution):
            raise ValueError(f'ConvStemDeiT: img_size must be a multiple of patch_size, got '
                             f'{kwargs.get("img_size", 224)} and {patch_size}')
        # The distillation token is computed from the patches: no learnt token.
        del self.dist_token

    def init_weights(self) -> None:
        # DistilledVisionTransformer.init_weights initialises the learnt token we removed.
        super(DistilledVisionTransformer, self).init_weights()

    def forward(self, x: Tensor) -> Tuple[Tuple[Tensor, ...], ...]:
        batch_size = x.shape[0]
        x, patch_resolution = self.patch_embed(x)
        cls_token = self.cls_token.expand(batch_size, -1, -1)
        dist_token = x.mean(dim=1, keepdim=True)
        x = torch.cat((cls_token, dist_token, x), dim=1)
        x = x + resize_pos_embed(self.pos_embed, self.patch_resolution, patch_resolution,
                                 mode=self.interpolate_mode,
                                 num_extra_tokens=self.num_extra_tokens)
        x = self.pre_norm(self.drop_after_pos(x))

        outs = []
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i == len(self.layers) - 1 and self.final_norm:
                x = self.ln1(x)
            if i in self.out_indices:
                outs.append(self._format_output(x, patch_resolution))
        return tuple(outs)

    def _format_output(self, x: Tensor, hw: Sequence[int]):
        if self.out_type == 'cls_token':
            return x[:, self.num_extra_tokens:].mean(dim=1), x[:, 0], x[:, 1]
        return super()._format_output(x, hw)
