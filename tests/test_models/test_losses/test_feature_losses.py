"""FitNet, CWD, PKD and SRD against plain-torch references, and their invariants."""
import pytest
import torch
import torch.nn.functional as F

from vkd_mmdet.models.losses import CWDLoss, FitNetLoss, PKDLoss, SRDLoss


def _features(n=2, c_s=4, c_t=6, h=5, w=7):
    return torch.randn(n, c_s, h, w), torch.randn(n, c_t, h, w)


def _mask(n=2, h=5, w=7):
    mask = torch.ones(n, 1, h, w, dtype=torch.bool)
    mask[1, :, 3:] = False
    mask[1, :, :, 4:] = False
    return mask


def test_fitnet_matches_reference():
    student, teacher = _features()
    loss = FitNetLoss(4, 6, loss_weight=0.5)
    conv = loss.adapter
    adapted = torch.einsum('nchw,oc->nohw', student, conv.weight[:, :, 0, 0]) \
        + conv.bias[None, :, None, None]
    assert torch.allclose(loss(student, teacher), 0.5 * ((adapted - teacher)**2).mean(),
                          atol=1e-6)


def test_fitnet_mask_excludes_padding():
    student, teacher = _features()
    mask = _mask()
    loss = FitNetLoss(4, 6)
    adapted = loss.adapter(student)
    squared = (adapted - teacher).square().permute(0, 2, 3, 1)[mask[:, 0]]
    assert torch.allclose(loss(student, teacher, mask), squared.mean(), atol=1e-6)
    # Changing padded cells changes nothing.
    teacher2 = teacher.clone()
    teacher2[1, :, 4:] = 1e3
    assert torch.allclose(loss(student, teacher2, mask), loss(student, teacher, mask))


def _cwd_reference(student, teacher, tau):
    total = 0.
    n, c = student.shape[:2]
    for i in range(n):
        for j in range(c):
            p_t = torch.softmax(teacher[i, j].flatten() / tau, 0)
            log_p_s = torch.log_softmax(student[i, j].flatten() / tau, 0)
            total = total + (p_t * (p_t.log() - log_p_s)).sum()
    return total / (n * c) * tau**2


@pytest.mark.parametrize('tau', [1.0, 4.0])
def test_cwd_matches_reference(tau):
    student, teacher = _features(c_s=6)
    loss = CWDLoss(6, 6, tau=tau, loss_weight=3.0)
    assert torch.allclose(loss(student, teacher), 3.0 * _cwd_reference(student, teacher, tau),
                          atol=1e-5)
    assert loss(teacher, teacher).abs().item() < 1e-6


def test_cwd_mask_equals_cropped_image():
    student, teacher = _features(c_s=6)
    mask = _mask()
    loss = CWDLoss(6, 6, tau=2.0)
    # Sample 1 is valid on [:3, :4] only: its term equals the KL over that crop.
    expected = (_cwd_reference(student[:1], teacher[:1], 2.0)
                + _cwd_reference(student[1:, :, :3, :4], teacher[1:, :, :3, :4], 2.0)) / 2
    assert torch.allclose(loss(student, teacher, mask), expected, atol=1e-5)


def test_cwd_adapter_only_when_channels_differ():
    assert isinstance(CWDLoss(6, 6).adapter, torch.nn.Identity)
    assert isinstance(CWDLoss(4, 6).adapter, torch.nn.Conv2d)


def test_pkd_matches_reference_and_is_pearson():
    student, teacher = _features(c_s=6)
    loss = PKDLoss(6, 6, loss_weight=2.0, eps=0.)
    pearson = torch.stack([torch.corrcoef(torch.stack([student[i, j].flatten(),
                                                       teacher[i, j].flatten()]))[0, 1]
                           for i in range(2) for j in range(6)])
    # mean((zs - zt)^2) / 2 = 1 - r per (sample, channel) with biased statistics.
    assert torch.allclose(loss(student, teacher), 2.0 * (1 - pearson).mean(), atol=1e-5)
    # Invariant to a per-sample, per-channel affine change of either side.
    scale = torch.rand(2, 6, 1, 1) + 0.5
    assert torch.allclose(loss(student * scale + 3, teacher), loss(student, teacher), atol=1e-5)


def test_pkd_batch_statistics_like_mmrazor():
    student, teacher = _features(c_s=6)
    loss = PKDLoss(6, 6, per_sample=False, eps=0.)

    def norm(x):  # MMRazor's PKDLoss.norm, with the biased std
        c = x.shape[1]
        flat = x.permute(1, 0, 2, 3).reshape(c, -1)
        flat = (flat - flat.mean(1, keepdim=True)) / flat.std(1, unbiased=False, keepdim=True)
        return flat.reshape(c, *x.shape[:1], *x.shape[2:]).permute(1, 0, 2, 3)

    expected = F.mse_loss(norm(student), norm(teacher)) / 2
    assert torch.allclose(loss(student, teacher), expected, atol=1e-5)


def test_pkd_mask_equals_cropped_image():
    student, teacher = _features(c_s=6)
    mask = _mask()
    loss = PKDLoss(6, 6)
    whole = loss(student[:1], teacher[:1])
    crop = loss(student[1:, :, :3, :4], teacher[1:, :, :3, :4])
    # Per-sample statistics: the masked mean weights each sample by its valid pixel count.
    expected = (whole * 35 + crop * 12) / 47
    assert torch.allclose(loss(student, teacher, mask), expected, atol=1e-5)


def test_srd_matches_reference():
    student, teacher = _features()
    loss = SRDLoss(4, 6, loss_weight=2.0)
    # Reference: nn.BatchNorm2d without affine, train mode, eps 1e-4, on both sides.
    bn_s = torch.nn.BatchNorm2d(6, eps=1e-4, affine=False, track_running_stats=False)
    bn_t = torch.nn.BatchNorm2d(6, eps=1e-4, affine=False, track_running_stats=False)
    projected = F.conv2d(student, loss.projector.weight, loss.projector.bias)
    expected = 2.0 * torch.log((bn_s(projected) - bn_t(teacher)).abs().pow(4).sum())
    assert torch.allclose(loss(student, teacher), expected, atol=1e-5)


def test_srd_mask_equals_pixels_as_samples():
    student, teacher = _features()
    mask = _mask()
    loss = SRDLoss(4, 6)
    # Valid pixels as a (P, C) batch of samples through BatchNorm1d.
    projected = loss.projector(student).permute(0, 2, 3, 1)[mask[:, 0]]
    target = teacher.permute(0, 2, 3, 1)[mask[:, 0]]
    bn = torch.nn.BatchNorm1d(6, eps=1e-4, affine=False, track_running_stats=False)
    expected = 2.0 * torch.log((bn(projected) - bn(target)).abs().pow(4).sum())
    assert torch.allclose(loss(student, teacher, mask), expected, atol=1e-5)


def test_srd_affine_teacher_change_is_invisible():
    student, teacher = _features()
    loss = SRDLoss(4, 6)
    scale = torch.rand(1, 6, 1, 1) + 0.5
    assert torch.allclose(loss(student, teacher * scale - 2), loss(student, teacher), atol=1e-4)
