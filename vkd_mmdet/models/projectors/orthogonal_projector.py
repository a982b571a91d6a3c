"""Orthogonal (Stiefel-manifold) projector: the student-side map of VkD (CVPR 2024)."""
import math
from collections import defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor
from torch.autograd.function import once_differentiable

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
    - ``'householder'``: minus the product of ``C_s`` reflections whose vectors are ``e_i`` plus
      the strict lower triangle of ``X`` (the sign makes ``X = 0`` give ``Q[:, :C_s] = I``),
      computed in compact WY form.

    For tall projectors (``C_t >= 2 C_s``) ``matrix_exp`` and ``cayley`` never build the
    ``C_t x C_t`` matrices: :func:`skew_map_columns` computes the same columns exactly from a
    ``min(C_t, 2 C_s)``-square problem, with an analytic backward. For the DeiT-Ti -> RegNetY
    projector (192 -> 3024): ~0.5 s forward + backward on one CPU thread instead of ~27 s.

    Every map gives an orthonormal ``W`` for *any* value of ``X``. PyTorch's Householder map
    multiplies by ``int(diag(X))``, which weight decay rounds to zero after one step (the pitfall in
    METHODS.md); that factor is left out here. Decay still pulls ``X`` towards zero, i.e. ``W``
    towards its initial value, so it takes no weight decay: ``DistillOptimWrapperConstructor``
    exempts every projector's parameters (found by type), and the distillers refuse an optimizer
    that decays them at its first step.

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
            # H_1 ... H_k = I - V T V^T (compact WY form) with T^{-1} = the upper triangle of
            # V^T V, diagonal halved (for tau_i = 2 / |v_i|^2): O(n k^2) with plain autograd,
            # where torch.linalg.householder_product's backward takes minutes for 3024 x 192.
            # The sign flip makes X = 0 (all reflections diag(-1)) start at ``base``; PyTorch
            # multiplies by the -1 diagonal of its raw weight instead.
            eye = torch.eye(n, k, dtype=x.dtype, device=x.device)
            vectors = x.tril(diagonal=-1) + eye
            t_inv = (vectors.T @ vectors).triu()
            t_inv = t_inv - 0.5 * torch.diag_embed(t_inv.diagonal())
            q = vectors @ torch.linalg.solve_triangular(t_inv, vectors[:k].T, upper=True) - eye
        elif n >= 2 * k:  # tall: the structured map works on a 2k-square problem
            q = skew_map_columns(x, self.orthogonal_map)
        else:  # square or nearly: the dense maps are as cheap, and GPU-friendly (no eigh sync)
            q = dense_map_columns(x, self.orthogonal_map)
        return self.base @ q

    @property
    def batchable(self) -> bool:
        """Whether :func:`projector_weights` maps this projector in one batched dense call."""
        return (self.orthogonal_map != 'householder'
                and self.out_channels < 2 * self.in_channels)

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


def dense_map_columns(raw: Tensor, orthogonal_map: str = 'matrix_exp') -> Tensor:
    """First ``k`` columns of ``f(A)``, ``A`` the dense ``n x n`` skew matrix of ``raw``.

    ``raw`` is ``(..., n, k)`` (a batch of projectors' raw weights, or one); ``A = L - L^T`` with
    ``L`` the lower triangle of ``raw`` padded with zero columns to ``n x n``; ``f = exp``
    (``'matrix_exp'``) or the Cayley map ``(I - A/2)^{-1} (I + A/2)`` (``'cayley'``), through
    ``torch.matrix_exp`` / ``torch.linalg.solve``, which take a batch in one call. Cost
    ``O(n^3)`` per matrix: for tall ``raw`` (``n >= 2k``) :func:`skew_map_columns` is cheaper.
    """
    n, k = raw.shape[-2:]
    skew = F.pad(raw.tril(), (0, n - k))
    skew = skew - skew.mT
    if orthogonal_map == 'matrix_exp':
        return torch.matrix_exp(skew)[..., :k]
    if orthogonal_map == 'cayley':
        eye = torch.eye(n, dtype=raw.dtype, device=raw.device)
        return torch.linalg.solve(eye - 0.5 * skew, eye[:, :k] + 0.5 * skew[..., :k])
    raise ValueError(f'dense_map_columns: orthogonal_map must be matrix_exp or cayley, '
                     f'got {orthogonal_map!r}')


def projector_weights(projectors: Sequence[OrthogonalProjector]) -> List[Tensor]:
    """``[p.weight for p in projectors]``, the dense maps of equal shapes in one batched call.

    Projectors with the same ``(C_t, C_s)``, map, dtype and device that take the dense path
    (:attr:`OrthogonalProjector.batchable`: e.g. the five 256 x 256 ``matrix_exp`` projectors
    of a Faster R-CNN FPN) are stacked: one ``torch.matrix_exp`` (or one ``solve``) on the
    ``(L, C_t, C_t)`` batch of skew matrices, one batched product with their ``base``, forward
    and backward. The same values and gradients as the per-projector maps, up to rounding (the
    batched kernels sum in another order); every other projector is mapped on its own.

    Args:
        projectors (Sequence[OrthogonalProjector]): any projectors, any shapes and maps.

    Returns:
        list[Tensor]: each projector's ``(C_t, C_s)`` weight, in the order given.
    """
    weights: List[Optional[Tensor]] = [None] * len(projectors)
    groups: Dict[tuple, List[int]] = defaultdict(list)
    for i, projector in enumerate(projectors):
        if projector.batchable:
            raw = projector.raw_weight
            groups[(raw.shape, projector.orthogonal_map, raw.dtype, raw.device)].append(i)
        else:
            weights[i] = projector.weight
    for (_, orthogonal_map, _, _), members in groups.items():
        raw = torch.stack([projectors[i].raw_weight for i in members])
        base = torch.stack([projectors[i].base for i in members])
        for i, weight in zip(members, (base @ dense_map_columns(raw, orthogonal_map)).unbind()):
            weights[i] = weight
    return weights


def skew_map_columns(raw: Tensor, orthogonal_map: str = 'matrix_exp') -> Tensor:
    """First ``k`` columns of ``f(A)`` for the skew ``A`` that PyTorch's orthogonal map builds.

    ``raw`` is ``(n, k)``, ``n >= k``; ``A = L - L^T`` with ``L`` its lower triangle padded with
    zero columns to ``n x n``, ``f = exp`` (``'matrix_exp'``) or the Cayley map
    ``(I - A/2)^{-1} (I + A/2)`` (``'cayley'``). Equal to
    ``torch.matrix_exp(A)[:, :k]`` (resp. the dense solve) up to rounding, values and gradients.

    Why it is cheap: ``A = [[A11, -B^T], [B, 0]]`` has a zero ``(n-k)``-square block. With the
    thin QR ``B = Q R``, ``A = P M P^T`` for ``P = diag(I_k, Q)`` (orthonormal columns, whatever the
    rank of ``B``) and the ``m``-square skew ``M = [[A11, -R^T], [R, 0]]``, ``m = min(n, 2k)``;
    hence ``f(A)[:, :k] = P f(M)[:, :k]``. ``f(M)`` comes from the eigendecomposition of the
    Hermitian ``iM``. The backward is the Daleckii-Krein formula for the normal ``A``: divided
    differences of ``f`` between the eigenvalues of ``M`` and, for the directions outside
    ``P``, the eigenvalue 0. It never differentiates the QR, so it holds where ``B`` is
    rank-deficient (``B = 0`` at initialisation). Cost ``O(n k^2 + k^3)`` instead of ``O(n^3)``.
    """
    return _SkewMapColumns.apply(raw, orthogonal_map)


class _SkewMapColumns(torch.autograd.Function):
    """Autograd of :func:`skew_map_columns` (once differentiable)."""

    @staticmethod
    def forward(ctx, raw: Tensor, orthogonal_map: str) -> Tensor:
        k = raw.shape[1]
        q_b, r = torch.linalg.qr(raw[k:])
        m = k + r.shape[0]
        skew = raw.new_zeros(m, m)
        lower = raw[:k].tril(diagonal=-1)
        skew[:k, :k] = lower - lower.T
        skew[k:, :k] = r
        skew[:k, k:] = -r.T
        # skew = V diag(-i mu) V^H with real mu: the eigenvalues of a real skew matrix are
        # imaginary, and i * skew is Hermitian.
        mu, v = torch.linalg.eigh(skew * 1j)
        values, _, _ = _spectral_terms(mu, orthogonal_map)
        columns = ((v * values) @ v[:k].mH).real
        ctx.orthogonal_map = orthogonal_map
        ctx.save_for_backward(q_b, mu, v)
        return torch.cat([columns[:k], q_b @ columns[k:]])

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        q_b, mu, v = ctx.saved_tensors
        k = grad.shape[1]
        # Split the upstream gradient into its part inside span(P) and the rest.
        grad_low = grad[k:]
        inside = q_b.T @ grad_low
        outside = grad_low - q_b @ inside
        _, divided, to_zero = _spectral_terms(mu, ctx.orthogonal_map)
        # d<G, f(A) E>/dA = L_f(A^T, G E^T) = P X P^T + outside Y P^T, where X, Y come from
        # the divided differences at the conjugate eigenvalues (the adjoint's spectrum).
        v_top = v[:k]
        g = torch.cat([grad[:k], inside]).to(v.dtype)
        x = (v @ (((v.mH @ g) @ v_top) * divided.conj()) @ v.mH).real
        y = ((v_top * to_zero.conj()) @ v_top.mH).real
        # A = L - L^T: the gradient of the lower triangle is (dA - dA^T) on its first k columns.
        s = x[:, :k] - x[:k].T
        return torch.cat([s[:k], q_b @ s[k:] + outside @ y]).tril(), None


def _spectral_terms(mu: Tensor, orthogonal_map: str) -> Tuple[Tensor, Tensor, Tensor]:
    """For eigenvalues ``lam = -i mu`` of a skew matrix: ``f(lam)``, the divided differences
    ``f[lam_a, lam_b]`` and ``f[lam_a, 0]``, in forms without cancellation."""
    lam = torch.complex(torch.zeros_like(mu), -mu)
    if orthogonal_map == 'matrix_exp':
        # (e^a - e^b) / (a - b) = e^{(a+b)/2} sinc((a-b)/2i) for imaginary a, b (torch.sinc has pi).
        half_sum = torch.exp(0.5 * (lam[:, None] + lam[None, :]))
        divided = half_sum * torch.sinc((mu[:, None] - mu[None, :]) / (2 * math.pi))
        to_zero = torch.exp(0.5 * lam) * torch.sinc(mu / (2 * math.pi))
        return torch.exp(lam), divided, to_zero
    if orthogonal_map == 'cayley':
        # f(z) = (1 + z/2) / (1 - z/2): f[a, b] = 1 / ((1 - a/2)(1 - b/2)), f[a, 0] = 1 / (1 - a/2).
        to_zero = 1.0 / (1.0 - 0.5 * lam)
        return (1.0 + 0.5 * lam) * to_zero, to_zero[:, None] * to_zero[None, :], to_zero
    raise ValueError(f'skew_map_columns: orthogonal_map must be matrix_exp or cayley, '
                     f'got {orthogonal_map!r}')
