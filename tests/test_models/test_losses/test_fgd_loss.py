"""FGDLoss against the paper's equations written here in plain torch (float64, values and
gradients), image by image on each image's real cells; the box-to-grid mapping by brute force."""
import math

import pytest
import torch

from vkd_mmdet.models.losses import FGDLoss
from vkd_mmdet.models.losses.fgd_loss import context_block
from vkd_mmdet.models.utils import gt_cell_weights

STRIDE = 8
# A padded batch of two image sizes: 64 x 96 (fills the batch) and 40 x 53 (padded).
BATCH_HW = (64, 96)
IMAGE_HW = [(64, 96), (40, 53)]
BOXES = [
    torch.tensor([[8.0, 8.0, 24.0, 24.0],     # rows 1-2, cols 1-2: 4 cells
                  [9.0, 9.0, 15.0, 15.0],     # inside the first: cell (1, 1) alone
                  [30.5, 3.0, 95.0, 63.9]]),  # touches the right and bottom edges
    torch.tensor([[0.0, 0.0, 52.9, 39.5],     # the whole small image
                  [20.0, 12.0, 20.0, 30.0]]),  # zero width: the one column it lies in
]


def _cells_of_box(box, stride, height, width):
    """Brute force: the cells whose pixel square [j s, (j+1) s) overlaps the box (a zero-width
    box: the cell it lies in)."""
    x1, y1, x2, y2 = box.tolist()
    x2, y2 = max(x2, x1 + 1e-9), max(y2, y1 + 1e-9)
    return [(i, j) for i in range(height) for j in range(width)
            if x1 < (j + 1) * stride and x2 > j * stride
            and y1 < (i + 1) * stride and y2 > i * stride]


def _reference_weights(boxes, stride, height, width):
    weights = torch.zeros(height, width, dtype=torch.float64)
    for box in boxes:
        cells = _cells_of_box(box, stride, height, width)
        for i, j in cells:
            weights[i, j] = max(weights[i, j], 1.0 / len(cells))
    return weights


def _real_cells(image_hw, stride):
    return math.ceil(image_hw[0] / stride), math.ceil(image_hw[1] / stride)


def _valid_mask(stride, size):
    mask = torch.zeros(len(IMAGE_HW), 1, *size, dtype=torch.bool)
    for i, hw in enumerate(IMAGE_HW):
        rows, cols = _real_cells(hw, stride)
        mask[i, :, :rows, :cols] = True
    return mask


@pytest.mark.parametrize('stride', [4, 8, 16, 32])
def test_boxes_map_to_the_padded_grid_by_stride(stride):
    size = (BATCH_HW[0] // stride, BATCH_HW[1] // stride)
    weights = gt_cell_weights(BOXES, size, stride, torch.float64)
    assert weights.shape == (2, 1, *size) and weights.dtype == torch.float64
    for i, boxes in enumerate(BOXES):
        torch.testing.assert_close(weights[i, 0], _reference_weights(boxes, stride, *size),
                                   rtol=0, atol=0)


def test_box_mapping_by_hand():
    weights = gt_cell_weights(BOXES, (8, 12), STRIDE)
    # Image 0: the small box wins its cell (max over overlaps), the 2x2 box the other three.
    assert weights[0, 0, 1, 1] == 1.0
    assert weights[0, 0, 1, 2] == weights[0, 0, 2, 1] == weights[0, 0, 2, 2] == 0.25
    # The padded image is not stretched: the whole 40 x 53 image is 5 x 7 cells of the 8 x 12
    # grid (the release would spread it over all 8 x 12).
    covered = weights[1, 0] > 0
    assert covered[:5, :7].all() and not covered[5:].any() and not covered[:, 7:].any()
    assert weights[1, 0, 0, 0] == 1 / 35
    assert gt_cell_weights([torch.zeros(0, 4)], (3, 4), STRIDE).abs().sum() == 0


def _attention(feature, temperature):
    """The paper: spatial H W softmax(mean_c |F| / T), channel C softmax(mean_hw |F| / T)."""
    channels, height, width = feature.shape
    spatial = height * width * torch.softmax(
        feature.abs().mean(0).flatten() / temperature, 0).view(height, width)
    channel = channels * torch.softmax(feature.abs().mean((1, 2)) / temperature, 0)
    return spatial, channel


def _gc_block(block, feature):
    """GcBlock from its parameters: x + W2 ReLU(LN(W1 sum_j softmax_j(Wk x_j) x_j))."""
    channels = feature.shape[0]
    key = block.conv_mask.weight.view(channels) @ feature.flatten(1) + block.conv_mask.bias
    context = feature.flatten(1) @ torch.softmax(key, 0)
    first, norm, _, last = block.channel_add_conv
    hidden = first.weight.flatten(1) @ context + first.bias
    hidden = (hidden - hidden.mean()) / torch.sqrt(hidden.var(unbiased=False) + norm.eps)
    hidden = torch.relu(hidden * norm.weight.flatten() + norm.bias.flatten())
    return feature + (last.weight.flatten(1) @ hidden + last.bias)[:, None, None]


def _reference_image(loss, student, teacher, boxes, stride, weights):
    """The paper's four terms of one image (its real cells), before the 1 / N."""
    _, height, width = teacher.shape
    scale = _reference_weights(boxes, stride, height, width)
    foreground = (scale > 0).double()
    background = (1 - foreground) / (1 - foreground).sum().clamp(min=1)
    spatial_t, channel_t = _attention(teacher, loss.temperature)
    spatial_s, channel_s = _attention(student, loss.temperature)
    squared = (teacher - student)**2 * spatial_t * channel_t[:, None, None]
    alpha, beta, gamma, lam = weights
    return dict(
        fg=alpha * (foreground * scale * squared).sum(),
        bg=beta * (background * squared).sum(),
        attention=gamma * ((spatial_t - spatial_s).abs().sum()
                           + (channel_t - channel_s).abs().sum()),
        **{'global': lam * ((_gc_block(loss.context_teacher, teacher)
                             - _gc_block(loss.context_student, student))**2).sum()})


def _reference(loss, student, teacher, boxes, stride, weights, crops):
    student = loss.projector(student)
    per_image = [_reference_image(loss, student[i, :, :rows, :cols],
                                  teacher[i, :, :rows, :cols], boxes[i], stride, weights)
                 for i, (rows, cols) in enumerate(crops)]
    return {key: sum(terms[key] for terms in per_image) / len(crops) for key in per_image[0]}


def _randomised(loss):
    """Every parameter random (the GcBlocks' last convolutions start at zero, which would hide
    the context path)."""
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for param in loss.parameters():
            param.copy_(torch.randn(param.shape, generator=generator, dtype=param.dtype) * 0.5)
    return loss


WEIGHTS = [(1e-3, 5e-4, 5e-4, 5e-6), (5e-5, 2.5e-5, 5e-5, 5e-7)]


@pytest.mark.parametrize('weights', WEIGHTS, ids=['one-stage', 'two-stage'])
@pytest.mark.parametrize('stride', [8, 16])
@pytest.mark.parametrize('channels', [(6, 6), (4, 6)], ids=['same', 'adapter'])
def test_matches_the_paper_per_image_on_real_cells(weights, stride, channels):
    c_s, c_t = channels
    projector = None if c_s == c_t else dict(type='LinearAdapter')
    torch.manual_seed(0)
    loss = _randomised(FGDLoss(c_s, c_t, *weights, temperature=0.8, projector=projector).double())
    size = (BATCH_HW[0] // stride, BATCH_HW[1] // stride)
    student = torch.randn(2, c_s, *size, dtype=torch.float64, requires_grad=True)
    teacher = torch.randn(2, c_t, *size, dtype=torch.float64)
    mask = _valid_mask(stride, size)
    got = loss(student, teacher, mask, stride, BOXES)
    want = _reference(loss, student, teacher, BOXES, stride, weights,
                      [_real_cells(hw, stride) for hw in IMAGE_HW])
    assert set(got) == {'fg', 'bg', 'attention', 'global'}
    params = [student] + list(loss.parameters())
    for key in want:
        assert want[key] > 0
        torch.testing.assert_close(got[key], want[key], rtol=1e-10, atol=0)
        grads = torch.autograd.grad(got[key], params, allow_unused=True, retain_graph=True)
        ref_grads = torch.autograd.grad(want[key], params, allow_unused=True, retain_graph=True)
        for grad, ref in zip(grads, ref_grads):
            if ref is None:
                assert grad is None or grad.abs().max() == 0
            else:
                torch.testing.assert_close(grad, ref, rtol=1e-8, atol=1e-15)


def test_without_padding_the_whole_map_is_the_paper():
    torch.manual_seed(0)
    loss = _randomised(FGDLoss(5, 5, ignore_padding=False).double())
    student, teacher = torch.randn(2, 2, 5, 8, 12, dtype=torch.float64)
    got = loss(student, teacher, _valid_mask(STRIDE, (8, 12)), STRIDE, BOXES)
    want = _reference(loss, student, teacher, BOXES, STRIDE, (1e-3, 5e-4, 5e-4, 5e-6),
                      [(8, 12), (8, 12)])
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=1e-10, atol=0)
    # ignore_padding with no padded cell (valid_mask None) is the same computation
    loss.ignore_padding = True
    unpadded = loss(student, teacher, None, STRIDE, BOXES)
    for key in want:
        torch.testing.assert_close(unpadded[key], want[key], rtol=1e-10, atol=0)


def test_attention_averages_one_over_the_real_cells():
    loss = FGDLoss(3, 3, temperature=0.5)
    feature = torch.randn(2, 3, 8, 12, dtype=torch.float64)
    mask = _valid_mask(STRIDE, (8, 12))
    spatial, channel = loss.attention(feature, mask)
    assert spatial.shape == (2, 1, 8, 12) and channel.shape == (2, 3)
    torch.testing.assert_close(spatial.sum((1, 2, 3)), mask.sum((1, 2, 3)).double())
    assert spatial[~mask].abs().max() == 0
    torch.testing.assert_close(channel.sum(1), torch.full((2,), 3.0, dtype=torch.float64))
    want_spatial, want_channel = _attention(feature[1, :, :5, :7], 0.5)
    torch.testing.assert_close(spatial[1, 0, :5, :7], want_spatial)
    torch.testing.assert_close(channel[1], want_channel)


def test_context_block_without_mask_is_mmcvs():
    loss = _randomised(FGDLoss(4, 4).double())
    feature = torch.randn(2, 4, 5, 6, dtype=torch.float64)
    torch.testing.assert_close(context_block(loss.context_student, feature, None),
                               loss.context_student(feature))


def test_gcblocks_start_as_identity_and_are_not_in_the_student_keys():
    loss = FGDLoss(4, 4)
    for block in (loss.context_student, loss.context_teacher):
        assert block.channel_add_conv[-1].weight.abs().sum() == 0
    names = {name for name, _ in loss.named_parameters()}
    assert names and all(name.startswith(('context_student.', 'context_teacher.'))
                         for name in names)


def test_image_without_boxes_is_all_background():
    loss = FGDLoss(3, 3)
    student, teacher = torch.randn(2, 1, 3, 4, 5)
    out = loss(student, teacher, None, STRIDE, [torch.zeros(0, 4)])
    assert out['fg'] == 0 and out['bg'] > 0


@pytest.mark.parametrize('kwargs, match', [
    (dict(alpha_fgd=-1.0), 'alpha_fgd must be a finite number >= 0'),
    (dict(lambda_fgd=float('nan')), 'lambda_fgd must be'),
    (dict(temperature=0.0), 'temperature must be > 0'),
    (dict(in_channels=4), 'projector=None maps nothing'),
])
def test_bad_arguments_raise(kwargs, match):
    args = dict(in_channels=3, out_channels=3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        FGDLoss(**args)


def test_boxes_of_another_batch_raise():
    loss = FGDLoss(3, 3)
    with pytest.raises(ValueError, match='gt_bboxes holds 1 images, the features 2'):
        loss(torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4), None, STRIDE, BOXES[:1])
    with pytest.raises(ValueError, match='needs the level.s `stride` and the `gt_bboxes`'):
        loss(torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4))

