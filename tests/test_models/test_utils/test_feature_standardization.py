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
    mask = padding_mask(_samples([(64, 96), (40, 70)], (64, 96)), (8, 12), 8,
                        torch.device('cpu'))
    assert mask.shape == (2, 1, 8, 12)
    assert mask[0].all()
    # Stride 8: 40 px = 5 rows; 70 px = 8.75 -> 9 columns (a partly covered cell).
    expected = torch.zeros(8, 12, dtype=torch.bool)
    expected[:5, :9] = True
    assert torch.equal(mask[1, 0], expected)


def _real_cells(extent, stride, cells):
    """Cells ``i`` of a level whose first pixel ``i * stride`` lies inside ``extent`` pixels."""
    return sum(1 for i in range(cells) if i * stride < extent)


def test_padding_mask_at_p6_counts_cells_that_start_inside_the_image():
    """A 50 x 80 px image in a 96 x 96 px batch. P6 (stride 64) of RetinaNet / Faster R-CNN is
    2 x 2 there (a stride-2 op on the 3 x 3 P5): only its first row and first two columns start
    inside the image (pixels 0 and 64 < 80); the second row starts at pixel 64 > 50."""
    samples = _samples([(50, 80), (96, 96)], (96, 96))
    for stride, size in ((8, 12), (32, 3), (64, 2), (128, 1)):
        mask = padding_mask(samples, (size, size), stride, torch.device('cpu'))
        expected = torch.zeros(size, size, dtype=torch.bool)
        expected[:_real_cells(50, stride, size), :_real_cells(80, stride, size)] = True
        assert torch.equal(mask[0, 0], expected), stride
        assert mask[1].all()
    p6 = padding_mask(samples, (2, 2), 64, torch.device('cpu'))
    assert p6[0, 0].sum(dim=1).tolist() == [2, 0]  # one real P6 row


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
    assert padding_mask(_samples([(64, 96), (64, 96)], (64, 96)), (8, 12), 8,
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


def test_one_value_per_channel_standardises_to_zero_as_the_masked_path_does():
    x = torch.randn(1, 4, 1, 1, requires_grad=True)
    out = standardize_channels(x)  # F.batch_norm refuses this in training mode
    masked = standardize_channels(x, torch.ones(1, 1, 1, 1, dtype=torch.bool))
    assert torch.equal(out, torch.zeros_like(x)) and torch.equal(masked, out)
    out.sum().backward()
    assert torch.isfinite(x.grad).all()
