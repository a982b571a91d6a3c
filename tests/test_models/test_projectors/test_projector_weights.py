"""projector_weights: several projectors' weights with the dense maps batched, in float64 equal
(values and gradients) to each projector's own ``weight`` (today's per-level maps)."""
from unittest import mock

import pytest
import torch

from vkd_mmdet.models.projectors import OrthogonalProjector, dense_map_columns, projector_weights


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _projectors(specs, scales):
    """Float64 projectors at random points of different sizes: ``matrix_exp`` picks its
    Taylor degree and scaling per matrix from the norm, so a batch mixes several of them."""
    projectors = []
    for (in_channels, out_channels, orthogonal_map), scale in zip(specs, scales):
        projector = OrthogonalProjector(in_channels, out_channels, orthogonal_map).double()
        with torch.no_grad():
            projector.raw_weight.normal_(0.0, scale)
        projectors.append(projector)
    return projectors


def _weights_and_grads(projectors, weights_of):
    """The weights, and the raw weights' gradients of sum_i <G_i, W_i> for fixed random G_i."""
    for projector in projectors:
        projector.raw_weight.grad = None
    weights = weights_of(projectors)
    generator = torch.Generator().manual_seed(1)
    upstream = [torch.randn(w.shape, dtype=w.dtype, generator=generator) for w in weights]
    sum((w * g).sum() for w, g in zip(weights, upstream)).backward()
    return ([w.detach() for w in weights],
            [projector.raw_weight.grad.clone() for projector in projectors])


def _per_projector(projectors):
    return [projector.weight for projector in projectors]


SCALES = [0.0, 0.01, 0.3, 1.0, 3.0]


@pytest.mark.parametrize('orthogonal_map', ['matrix_exp', 'cayley'])
def test_faster_rcnn_fpn_five_256_square_projectors(orthogonal_map):
    # The five P2-P6 projectors of a Faster R-CNN R101 -> R18 VkD step, one batched call.
    projectors = _projectors([(256, 256, orthogonal_map)] * 5, SCALES)
    batched, batched_grads = _weights_and_grads(projectors, projector_weights)
    today, today_grads = _weights_and_grads(projectors, _per_projector)
    for got, expected in zip(batched + batched_grads, today + today_grads):
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_mixed_shapes_and_maps_keep_their_order_and_values():
    specs = [(12, 12, 'matrix_exp'), (10, 16, 'cayley'), (6, 40, 'matrix_exp'),
             (12, 12, 'matrix_exp'), (8, 20, 'householder'), (10, 16, 'cayley'),
             (10, 16, 'matrix_exp'), (12, 12, 'cayley'), (12, 12, 'matrix_exp')]
    projectors = _projectors(specs, [0.3, 1.0, 0.5, 2.0, 0.4, 0.05, 0.7, 1.5, 0.0])
    batched, batched_grads = _weights_and_grads(projectors, projector_weights)
    today, today_grads = _weights_and_grads(projectors, _per_projector)
    for i, (in_channels, out_channels, _) in enumerate(specs):
        assert batched[i].shape == (out_channels, in_channels)
        torch.testing.assert_close(batched[i], today[i], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(batched_grads[i], today_grads[i], rtol=1e-12, atol=1e-12)


def test_one_matrix_exp_call_per_group_of_equal_projectors():
    projectors = _projectors([(12, 12, 'matrix_exp')] * 3 + [(10, 16, 'matrix_exp')] * 2
                             + [(6, 40, 'matrix_exp')], [0.3] * 6)
    calls = []
    matrix_exp = torch.matrix_exp

    def counting(matrices):
        calls.append(tuple(matrices.shape))
        return matrix_exp(matrices)

    with mock.patch.object(torch, 'matrix_exp', counting):
        projector_weights(projectors)
    # The tall 6 -> 40 projector takes its structured map (no matrix_exp at all).
    assert sorted(calls) == [(2, 16, 16), (3, 12, 12)]


def test_dense_map_columns_names_a_map_it_does_not_have():
    with pytest.raises(ValueError, match="got 'householder'"):
        dense_map_columns(torch.zeros(4, 4), 'householder')
