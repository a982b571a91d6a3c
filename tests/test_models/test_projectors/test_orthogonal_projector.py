"""OrthogonalProjector against PyTorch's ``parametrizations.orthogonal`` and plain-torch maths."""
import pytest
import torch
import torch.nn as nn
from torch.nn.utils import parametrizations

from vkd_mmdet.models.projectors import ORTHOGONAL_MAPS, OrthogonalProjector
from vkd_mmdet.models.projectors.orthogonal_projector import skew_map_columns


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny matrices: thread hand-offs cost more than the maths on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# (C_s, C_t): square, tall with C_t < 2 C_s, tall with C_t >= 2 C_s (the structured fast path).
SHAPES = [(12, 12), (10, 16), (6, 40)]


def _torch_reference(projector: OrthogonalProjector) -> nn.Linear:
    """PyTorch's orthogonal parametrisation holding the projector's ``base`` and ``raw_weight``."""
    linear = nn.Linear(projector.in_channels, projector.out_channels, bias=False).double()
    parametrizations.orthogonal(linear, orthogonal_map=projector.orthogonal_map)
    with torch.no_grad():
        linear.parametrizations.weight[0].base.copy_(projector.base)
        linear.parametrizations.weight.original.copy_(projector.raw_weight)
    return linear


def _random_projector(in_channels: int, out_channels: int, orthogonal_map: str,
                      scale: float) -> OrthogonalProjector:
    projector = OrthogonalProjector(in_channels, out_channels, orthogonal_map).double()
    with torch.no_grad():
        projector.raw_weight.normal_(0.0, scale)
    return projector


@pytest.mark.parametrize('orthogonal_map', ['matrix_exp', 'cayley'])
@pytest.mark.parametrize('in_channels,out_channels', SHAPES)
@pytest.mark.parametrize('scale', [0.0, 0.3])
def test_matches_torch_parametrization(orthogonal_map, in_channels, out_channels, scale):
    projector = _random_projector(in_channels, out_channels, orthogonal_map, scale)
    reference = _torch_reference(projector)
    upstream = torch.randn(out_channels, in_channels, dtype=torch.float64)

    weight = projector.weight
    (weight * upstream).sum().backward()
    expected = reference.weight
    (expected * upstream).sum().backward()

    torch.testing.assert_close(weight, expected, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(projector.raw_weight.grad,
                               reference.parametrizations.weight.original.grad,
                               rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize('in_channels,out_channels', SHAPES)
def test_householder_is_base_times_torch_householder(in_channels, out_channels):
    """Ours = PyTorch's Householder map with its raw diagonal frozen at its initial -1."""
    projector = _random_projector(in_channels, out_channels, 'householder', 0.3)
    linear = _torch_reference(projector)
    with torch.no_grad():
        linear.parametrizations.weight.original.diagonal().fill_(-1.0)
    upstream = torch.randn(out_channels, in_channels, dtype=torch.float64)
    (projector.weight * upstream).sum().backward()
    expected = linear.weight
    (expected * upstream).sum().backward()
    torch.testing.assert_close(projector.weight, expected, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(projector.raw_weight.grad,
                               linear.parametrizations.weight.original.grad.tril(diagonal=-1))


@pytest.mark.parametrize('orthogonal_map', ORTHOGONAL_MAPS)
def test_init_is_orthonormalised_linear_init(orthogonal_map):
    torch.manual_seed(3)
    expected = nn.Linear(6, 20, bias=False).weight.detach()
    torch.manual_seed(3)
    weight = OrthogonalProjector(6, 20, orthogonal_map).weight.detach()
    torch.testing.assert_close(weight.T @ weight, torch.eye(6), atol=1e-5, rtol=0)
    # Same column space with the same orientation: Gram-Schmidt of the Linear init.
    q, r = torch.linalg.qr(expected)
    torch.testing.assert_close(weight, q * torch.sign(torch.diagonal(r)), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('orthogonal_map', ORTHOGONAL_MAPS)
def test_stays_orthonormal_under_adamw_weight_decay(orthogonal_map):
    in_channels, out_channels = 6, 24
    projector = OrthogonalProjector(in_channels, out_channels, orthogonal_map)
    optimizer = torch.optim.AdamW(projector.parameters(), lr=1e-2, weight_decay=0.05)
    inputs = torch.randn(64, in_channels)
    target = inputs @ torch.linalg.qr(torch.randn(out_channels, in_channels))[0].T
    initial = projector.weight.detach().clone()
    first_loss = None
    for _ in range(300):
        loss = (projector(inputs) - target).square().mean()
        first_loss = loss.item() if first_loss is None else first_loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    weight = projector.weight.detach()
    torch.testing.assert_close(weight.T @ weight, torch.eye(in_channels), atol=1e-4, rtol=0)
    # It learned something (decay did not freeze or zero it).
    assert (weight - initial).abs().max() > 0.1
    assert loss.item() < 0.5 * first_loss


def _dense_map_columns(raw: torch.Tensor, orthogonal_map: str) -> torch.Tensor:
    """The n x n computation the structured map avoids: plain torch, written here."""
    n, k = raw.shape
    lower = torch.zeros(n, n, dtype=raw.dtype)
    lower[:, :k] = raw.tril()
    skew = lower - lower.T
    if orthogonal_map == 'matrix_exp':
        return torch.matrix_exp(skew)[:, :k]
    eye = torch.eye(n, dtype=raw.dtype)
    return (torch.linalg.inv(eye - skew / 2) @ (eye + skew / 2))[:, :k]


def _raw(n: int, k: int, case: str, dtype=torch.float64) -> torch.Tensor:
    raw = torch.zeros(n, k, dtype=dtype)
    if case == 'random':
        raw.normal_(0.0, 0.5)
    elif case == 'large':
        raw.normal_(0.0, 3.0)
    elif case == 'rank_deficient':  # B = x[k:] of rank 2, A11 random
        raw[:k].normal_()
        raw[k:] = torch.randn(n - k, 2, dtype=dtype) @ torch.randn(2, k, dtype=dtype)
    return raw  # case 'zero': the initialisation, B = 0 and A = 0


@pytest.mark.parametrize('orthogonal_map', ['matrix_exp', 'cayley'])
@pytest.mark.parametrize('n,k', [(40, 6), (16, 10), (12, 12), (13, 1)])
@pytest.mark.parametrize('case', ['zero', 'random', 'large', 'rank_deficient'])
def test_structured_map_equals_dense_values_and_gradients(orthogonal_map, n, k, case):
    raw = _raw(n, k, case).requires_grad_()
    upstream = torch.randn(n, k, dtype=torch.float64)
    fast = skew_map_columns(raw, orthogonal_map)
    (grad_fast,) = torch.autograd.grad((fast * upstream).sum(), raw)
    dense = _dense_map_columns(raw, orthogonal_map)
    (grad_dense,) = torch.autograd.grad((dense * upstream).sum(), raw)
    torch.testing.assert_close(fast, dense, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(grad_fast, grad_dense, rtol=1e-9, atol=1e-9)


def test_structured_map_gradcheck_at_zero_and_random():
    for case in ('zero', 'random'):
        raw = _raw(9, 3, case).requires_grad_()
        for orthogonal_map in ('matrix_exp', 'cayley'):
            assert torch.autograd.gradcheck(lambda x, m=orthogonal_map: skew_map_columns(x, m),
                                            (raw,))


def test_structured_map_float32_tall():
    """A DeiT -> RegNetY-like aspect ratio in float32, against the dense map in float64."""
    raw = _raw(300, 24, 'random', torch.float32).requires_grad_()
    upstream = torch.randn(300, 24)
    fast = skew_map_columns(raw)
    (grad_fast,) = torch.autograd.grad((fast * upstream).sum(), raw)
    raw64 = raw.detach().double().requires_grad_()
    dense = _dense_map_columns(raw64, 'matrix_exp')
    (grad_dense,) = torch.autograd.grad((dense * upstream.double()).sum(), raw64)
    torch.testing.assert_close(fast, dense.float(), rtol=0, atol=1e-5)
    torch.testing.assert_close(grad_fast, grad_dense.float(), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(fast.T @ fast, torch.eye(24), rtol=0, atol=1e-5)


def test_forward_is_1x1_conv_or_linear():
    projector = OrthogonalProjector(4, 6)
    weight = projector.weight.detach()
    image = torch.randn(2, 4, 3, 5)
    tokens = torch.randn(2, 7, 4)
    torch.testing.assert_close(projector(image), torch.einsum('oc,nchw->nohw', weight, image))
    torch.testing.assert_close(projector(tokens), tokens @ weight.T)


def test_rejects_wide_projector():
    with pytest.raises(ValueError, match=r'in_channels=8 > out_channels=4'):
        OrthogonalProjector(8, 4)


def test_rejects_unknown_map():
    with pytest.raises(ValueError, match=r"orthogonal_map must be one of .*got 'qr'"):
        OrthogonalProjector(4, 8, 'qr')
