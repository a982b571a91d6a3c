"""A free linear channel map: the adapter of FitNet, SRD, CWD, PKD, ND and VkD's ablation."""
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class LinearAdapter(nn.Linear):
    """Unconstrained linear map ``C_s -> C_t``, applied per pixel or per sample.

    ``y = W x + b`` with a free ``(C_t, C_s)`` weight, initialised as ``nn.Linear`` (and so as a
    1x1 ``nn.Conv2d``: same bounds, same random draws). Unlike :class:`OrthogonalProjector` it
    takes the optimizer's weight decay. With ``norm`` (KD++'s projector) a BatchNorm over the
    input's channels and a dropout run first: ``y = W dropout(BN(x)) + b``.

    Args:
        in_channels (int): ``C_s``.
        out_channels (int): ``C_t``.
        bias (bool): learn ``b``. Defaults to True.
        norm (bool): BatchNorm then dropout before the map; ``(N, C_s)`` inputs only.
            Defaults to False.
        dropout (float): the dropout probability with ``norm``. Defaults to 0.5.

    Shape:
        - Input: ``(N, C_s, H, W)`` (a 1x1 convolution) or ``(N, C_s)``.
        - Output: ``(N, C_t, H, W)`` or ``(N, C_t)``.

    Config:
        ``projector=dict(type='LinearAdapter', bias=False)`` in a loss that maps channels.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 bias: bool = True,
                 norm: bool = False,
                 dropout: float = 0.5) -> None:
        super().__init__(in_channels, out_channels, bias=bias)
        self.pre = nn.Sequential(nn.BatchNorm1d(in_channels), nn.Dropout(dropout)) if norm \
            else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 4:
            if not isinstance(self.pre, nn.Identity):
                raise ValueError('LinearAdapter(norm=True) maps (N, C) inputs; got '
                                 f'{tuple(x.shape)}')
            return F.conv2d(x, self.weight[:, :, None, None], self.bias)
        return super().forward(self.pre(x))
