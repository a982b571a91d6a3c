"""VkDLoss against a plain-torch reference, its invariants, and the projector-decay rule."""
import pytest
import torch

from vkd_mmdet.models.losses import VkDLoss


def _reference_vkd(student, teacher, weight, mask, eps=1e-5, beta=1.0):
    """The loss written out: 1x1 projection, per-channel z-score over real pixels, smooth-L1."""
    projected = torch.einsum('oc,nchw->nohw', weight, student)
    keep = mask.expand_as(teacher).permute(1, 0, 2, 3).reshape(teacher.shape[1], -1)[0]

    def zscore(x):
        flat = x.permute(1, 0, 2, 3).reshape(x.shape[1], -1)[:, keep]
        return (flat - flat.mean(1, keepdim=True)) / torch.sqrt(flat.var(1, unbiased=False,
                                                                         keepdim=True) + eps)

    diff = (zscore(projected) - zscore(teacher)).abs()
    return torch.where(diff < beta, 0.5 * diff**2 / beta, diff - 0.5 * beta).mean()


def _features(channels_s=4, channels_t=6, seed=0):
    generator = torch.Generator().manual_seed(seed)
    student = torch.randn(2, channels_s, 5, 7, generator=generator)
    teacher = torch.randn(2, channels_t, 5, 7, generator=generator) * 4 + 1
    mask = torch.ones(2, 1, 5, 7, dtype=torch.bool)
    mask[1, :, 3:, :] = False
    mask[1, :, :, 5:] = False
    return student, teacher, mask


@pytest.mark.parametrize('orthogonal_map', ['matrix_exp', 'cayley', 'householder'])
def test_matches_plain_torch_reference(orthogonal_map):
    student, teacher, mask = _features()
    loss_fn = VkDLoss(4, 6, loss_weight=2.5, projector=dict(type='OrthogonalProjector',
                                                           orthogonal_map=orthogonal_map))
    with torch.no_grad():
        loss_fn.projector.raw_weight.normal_(std=0.3)
    expected = 2.5 * _reference_vkd(student, teacher, loss_fn.projector.weight.detach(), mask)
    torch.testing.assert_close(loss_fn(student, teacher, mask), expected)


def test_padding_is_ignored_by_default_and_included_on_request():
    student, teacher, mask = _features()
    loss_fn = VkDLoss(4, 6)
    teacher_garbage = teacher.clone()
    teacher_garbage[~mask.expand_as(teacher)] = 1e3
    torch.testing.assert_close(loss_fn(student, teacher_garbage, mask),
                               loss_fn(student, teacher, mask))
    with_padding = VkDLoss(4, 6, ignore_padding=False)
    with_padding.load_state_dict(loss_fn.state_dict())
    full = torch.ones_like(mask)
    torch.testing.assert_close(with_padding(student, teacher, mask),
                               _reference_vkd(student, teacher, loss_fn.projector.weight.detach(),
                                              full))


def test_zero_when_the_teacher_is_the_projected_student_up_to_channel_affine():
    student, _, mask = _features()
    loss_fn = VkDLoss(4, 6)
    with torch.no_grad():
        projected = loss_fn.projector(student)
        scale = torch.rand(1, 6, 1, 1) + 0.5
        # Standardisation removes any per-channel scale and shift of the teacher.
        teacher = projected * scale + torch.randn(1, 6, 1, 1)
    assert loss_fn(student, teacher, mask).item() < 1e-6


def test_loss_weight_scales_linearly_and_zero_weight_gives_zero():
    student, teacher, mask = _features()
    base = VkDLoss(4, 6, loss_weight=1.0)
    triple = VkDLoss(4, 6, loss_weight=3.0)
    zero = VkDLoss(4, 6, loss_weight=0.0)
    triple.load_state_dict(base.state_dict())
    zero.load_state_dict(base.state_dict())
    torch.testing.assert_close(triple(student, teacher, mask), 3 * base(student, teacher, mask))
    assert zero(student, teacher, mask).item() == 0.0


def test_shape_mismatch_is_an_error_not_a_broadcast():
    student, teacher, _ = _features()
    with pytest.raises(ValueError, match=r'^VkDLoss: student feature \(2, 6, 5, 7\) and teacher '
                                         r'feature \(2, 6, 4, 7\) must both be \(N, C, H, W\)'):
        VkDLoss(4, 6)(student, teacher[:, :, :4])


@pytest.mark.parametrize('orthogonal_map', ['matrix_exp', 'cayley', 'householder'])
def test_projector_stays_orthogonal_under_adamw_decay_and_keeps_a_gradient(orthogonal_map):
    """Worst case: decay applied to the projector too. Our maps are orthogonal for any parameter
    value, so 300 AdamW steps with weight decay 0.05 leave W^T W = I and the loss alive."""
    student, teacher, mask = _features(4, 6)
    loss_fn = VkDLoss(4, 6, projector=dict(type='OrthogonalProjector',
                                           orthogonal_map=orthogonal_map))
    optimizer = torch.optim.AdamW(loss_fn.parameters(), lr=1e-2, weight_decay=0.05)
    for _ in range(300):
        optimizer.zero_grad()
        loss_fn(student, teacher, mask).backward()
        optimizer.step()
    weight = loss_fn.projector.weight.detach()
    assert (weight.T @ weight - torch.eye(4)).abs().max().item() < 1e-4
    optimizer.zero_grad()
    loss_fn(student, teacher, mask).backward()
    assert loss_fn.projector.raw_weight.grad.abs().sum().item() > 0


def test_student_gradient_flows_through_the_projection():
    student, teacher, mask = _features()
    student.requires_grad_(True)
    VkDLoss(4, 6)(student, teacher, mask).backward()
    assert student.grad.abs().sum().item() > 0
    assert torch.isfinite(student.grad).all()


LINEAR = dict(type='LinearAdapter', bias=False)


def test_linear_ablation_uses_a_free_bias_free_map():
    student, teacher, mask = _features()
    loss_fn = VkDLoss(4, 6, loss_weight=1.5, projector=LINEAR)
    assert type(loss_fn.projector).__name__ == 'LinearAdapter'
    weight = loss_fn.projector.weight.detach()
    assert loss_fn.projector.bias is None
    # a free map: its columns are not orthonormal at init, unlike the paper's projector
    assert not torch.allclose(weight.T @ weight, torch.eye(4), atol=1e-2)
    torch.testing.assert_close(loss_fn(student, teacher, mask),
                               1.5 * _reference_vkd(student, teacher, weight, mask))


@pytest.mark.parametrize('orthogonal', [True, False])
def test_without_normalisation_compares_raw_features_over_real_pixels(orthogonal):
    student, teacher, mask = _features()
    loss_fn = VkDLoss(4, 6, normalize=False,
                      **({} if orthogonal else dict(projector=LINEAR)))
    weight = loss_fn.projector.weight.detach()
    projected = torch.einsum('oc,nchw->nohw', weight, student)
    diff = (projected - teacher).abs()[mask.expand_as(teacher)]
    expected = torch.where(diff < 1.0, 0.5 * diff**2, diff - 0.5).mean()
    torch.testing.assert_close(loss_fn(student, teacher, mask), expected)
