"""Orthogonal (Stiefel-manifold) projector: the student-side map of VkD (CVPR 2024)."""
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor

ORTHOGONAL_MAPS: Tuple[str, ...] = ('matrix_exp', 'cayley', 'householder')


@MODELS.register_module()
class OrthogonalProjector(BaseModule):
    """Bias-free linear map ``C_s -> C_t`` whose weight has orthonormal columns.

    ``W = B @ Q(X)[:, :C_s]`` with ``W^T W = I``: a rotation when ``C_s == C_t``, an isometric
    embedding otherwise, so the student's feature norms and angles survive the projection (the
    paper's argument against a free linear or MLP projector). ``X`` (``raw_weight``, shaped like
    ``W``) is unconstrained; ``B`` (``base``, a ``C_t x C_t`` orthogonal buffer) is the
    orthonormalised default ``nn.Linear`` initialisation, completed to a square matrix, so that the
    projector starts as in PyTorch's ``parametrizations.orthogonal``. ``Q`` is one of:

    - ``'matrix_exp'`` (the paper's map, default): ``Q = expm(A)`` with ``A`` the skew-symmetric
      matrix built from the lower triangle of ``X`` padded to ``C_t x C_t``.
    - ``'cayley'``: ``Q = (I - A/2)^{-1} (I + A/2)``; cheaper, covers rotations without -1
      eigenvalues.
    - ``'householder'``: the product of ``C_s`` reflections whose vectors are ``e_i`` plus the
      strict lower triangle of ``X``.

    Every map gives an orthonormal ``W`` for *any* value of ``X``. PyTorch's Householder map
    multiplies by ``int(diag(X))``, which weight decay rounds to zero after one step (the pitfall in
    METHODS.md); that factor is left out here. Decay still pulls ``X`` towards zero, i.e. ``W``
    towards its initial value, so the distiller keeps ``raw_weight`` out of weight decay too.

    Args:
        in_channels (int): ``C_s``, the student's channels.
        out_channels (int): ``C_t``, the teacher's channels; must be ``>= in_channels``.
        orthogonal_map (str): ``'matrix_exp'`` | ``'cayley'`` | ``'householder'``.
        init_cfg (dict, optional): mmengine init config. Defaults to None.

    Shape:
        - Input: ``(N, C_s, H, W)`` (applied per pixel, a 1x1 convolution) or ``(..., C_s)``
          (per token).
        - Output: ``(N, C_t, H, W)`` or ``(..., C_t)``.

    Example:
        >>> proj = OrthogonalProjector(192, 384)
        >>> w = proj.weight  # materialise once, reuse for every input of the step
        >>> torch.allclose(w.T @ w, torch.eye(192), atol=1e-5)
        True
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 orthogonal_map: str = 'matrix_exp',
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if orthogonal_map not in ORTHOGONAL_MAPS:
            raise ValueError(f'orthogonal_map must be one of {ORTHOGONAL_MAPS}, '
                             f'got {orthogonal_map!r}')
        if in_channels > out_channels:
            raise ValueError(
                f'An orthogonal projector needs in_channels <= out_channels (orthonormal '
                f'columns), got in_channels={in_channels} > out_channels={out_channels}. '
                'Distil into a teacher at least as wide as the student.')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.orthogonal_map = orthogonal_map
        self.raw_weight = nn.Parameter(torch.zeros(out_channels, in_channels))
        self.register_buffer('base', _orthonormal_linear_init(in_channels, out_channels))

    @property
    def weight(self) -> Tensor:
        """The ``(C_t, C_s)`` orthonormal-column weight; recomputed (with autograd) per access."""
        n, k = self.out_channels, self.in_channels
        x = self.raw_weight
        if self.orthogonal_map == 'householder':
            reflectors = x.tril(diagonal=-1)
            tau = 2.0 / (1.0 + reflectors.square().sum(dim=0))
            q = torch.linalg.householder_product(reflectors, tau)
        else:
            skew = F.pad(x.tril(), (0, n - k))
            skew = skew - skew.T
            if self.orthogonal_map == 'matrix_exp':
                q = torch.matrix_exp(skew)[:, :k]
            else:
                eye = torch.eye(n, dtype=x.dtype, device=x.device)
                q = torch.linalg.solve(eye - 0.5 * skew, eye[:, :k] + 0.5 * skew[:, :k])
        return self.base @ q

    def forward(self, x: Tensor) -> Tensor:
        return self.project(x, self.weight)

    @staticmethod
    def project(x: Tensor, weight: Tensor) -> Tensor:
        """Apply a materialised ``weight`` to ``x`` (channels at dim 1 for 4-D, else last)."""
        if x.dim() == 4:
            return F.conv2d(x, weight[:, :, None, None])
        return F.linear(x, weight)

    def extra_repr(self) -> str:
        return (f'in_channels={self.in_channels}, out_channels={self.out_channels}, '
                f'orthogonal_map={self.orthogonal_map!r}')


def _orthonormal_linear_init(in_channels: int, out_channels: int) -> Tensor:
    """``nn.Linear``'s default weight, orthonormalised and completed to a ``C_t x C_t`` rotation."""
    weight = nn.Linear(in_channels, out_channels, bias=False).weight.detach()
    if out_channels > in_channels:
        weight = torch.cat([weight, torch.randn(out_channels, out_channels - in_channels)], dim=1)
    q, r = torch.linalg.qr(weight)
    # Fix the sign ambiguity of QR so the first columns span the Linear init's column space
    # with the same orientation.
    return q * torch.sign(torch.diagonal(r)).where(torch.diagonal(r) != 0, torch.ones(()))
