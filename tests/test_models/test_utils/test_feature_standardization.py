"""Masked per-channel standardisation and padding masks against plain-torch references."""
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmdet.structures import DetDataSample

from vkd_mmdet.models.utils import masked_channel_stats, padding_mask, standardize_channels


def _samples(image_shapes, batch_shape):
    samples = []
    for shape in image_shapes:
        sample = DetDataSample()
        sample.set_metainfo(dict(img_shape=shape, batch_input_shape=batch_shape))
        samples.append(sample)
    return samples


def test_padding_mask_marks_the_image_region_of_each_sample():
    mask = padding_mask(_samples([(64, 96), (40, 70)], (64, 96)), (8, 12), torch.device('cpu'))
    assert mask.shape == (2, 1, 8, 12)
    assert mask[0].all()
    # 40/64 of 8 rows = 5 rows; 70/96 of 12 columns = 8.75 -> 9 columns (a partly covered cell).
    expected = torch.zeros(8, 12, dtype=torch.bool)
    expected[:5, :9] = True
    assert torch.equal(mask[1, 0], expected)


def test_padded_batch_standardises_like_its_unpadded_pixels():
    generator = torch.Generator().manual_seed(0)
    small = torch.randn(1, 4, 5, 6, generator=generator) * 3 + 2
    large = torch.randn(1, 4, 8, 9, generator=generator) - 1
    padded_small = torch.full((1, 4, 8, 9), 100.0)  # padding: values that must not count
    padded_small[..., :5, :6] = small
    batch = torch.cat([padded_small, large])
    mask = torch.zeros(2, 1, 8, 9, dtype=torch.bool)
    mask[0, :, :5, :6] = True
    mask[1] = True

    out = standardize_channels(batch, mask, eps=1e-5)

    pixels = torch.cat([small.flatten(2), large.flatten(2)], dim=2)  # (1, C, P) real pixels only
    mean = pixels.mean(dim=2, keepdim=True)
    var = pixels.var(dim=2, unbiased=False, keepdim=True)
    reference = (pixels - mean) / torch.sqrt(var + 1e-5)
    got = torch.cat([out[0:1, :, :5, :6].flatten(2), out[1:2].flatten(2)], dim=2)
    torch.testing.assert_close(got, reference, rtol=1e-5, atol=1e-5)


def test_without_a_mask_it_is_affine_free_batchnorm():
    x = torch.randn(3, 5, 4, 4) * 2 + 7
    reference = torch.nn.functional.batch_norm(x, None, None, training=True, eps=1e-5)
    torch.testing.assert_close(standardize_channels(x, None, eps=1e-5), reference)


def test_constant_channel_stays_finite():
    x = torch.ones(2, 3, 4, 4)
    x.requires_grad_(True)
    out = standardize_channels(x)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()


def _sync_worker(rank, world_size, port, shards, results):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world_size)
    try:
        mean, var = masked_channel_stats(shards[rank], None, sync=True)
        results[rank] = (mean, var)
    finally:
        dist.destroy_process_group()


def test_synchronised_statistics_equal_those_of_the_whole_batch():
    """Two gloo ranks, each with half the batch, agree with the concatenated batch's statistics."""
    shards = [torch.randn(2, 3, 4, 5) + rank for rank in range(2)]
    manager = mp.Manager()
    results = manager.dict()
    port = 29500 + os.getpid() % 1000
    mp.spawn(_sync_worker, args=(2, port, shards, results), nprocs=2, join=True)
    whole = torch.cat(shards)
    expected_mean = whole.mean(dim=(0, 2, 3))
    expected_var = whole.var(dim=(0, 2, 3), unbiased=False)
    for rank in range(2):
        mean, var = results[rank]
        torch.testing.assert_close(mean, expected_mean)
        torch.testing.assert_close(var, expected_var)


@pytest.mark.parametrize('sync', [False, True])
def test_single_process_sync_is_a_no_op(sync):
    x = torch.randn(2, 3, 4, 4)
    torch.testing.assert_close(standardize_channels(x, sync=sync), standardize_channels(x))


def test_padding_mask_is_none_for_an_unpadded_batch():
    assert padding_mask(_samples([(64, 96), (64, 96)], (64, 96)), (8, 12),
                        torch.device('cpu')) is None


def test_all_true_mask_matches_the_unmasked_fast_path_values_and_gradients():
    x = (torch.randn(2, 5, 6, 7) * 3 + 4).requires_grad_(True)
    grad_out = torch.randn(2, 5, 6, 7)
    fast = standardize_channels(x)
    (fast_grad,) = torch.autograd.grad(fast, x, grad_out)
    masked = standardize_channels(x, torch.ones(2, 1, 6, 7, dtype=torch.bool))
    (masked_grad,) = torch.autograd.grad(masked, x, grad_out)
    torch.testing.assert_close(masked, fast, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(masked_grad, fast_grad, rtol=1e-4, atol=1e-5)
