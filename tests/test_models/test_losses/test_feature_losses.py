"""FitNet, CWD, PKD and SRD against plain-torch references, and their invariants."""
import glob
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmengine.config import Config

from vkd_mmdet.models.losses import CWDLoss, FitNetLoss, PKDLoss, SRDLoss
from vkd_mmdet.models.projectors import LinearAdapter

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
PKD_CONFIGS = sorted(path for path in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'),
                                                recursive=True)
                     if 'pkd' in osp.relpath(path, osp.join(ROOT, 'configs')))


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
    conv = loss.projector
    adapted = torch.einsum('nchw,oc->nohw', student, conv.weight) \
        + conv.bias[None, :, None, None]
    assert torch.allclose(loss(student, teacher), 0.5 * ((adapted - teacher)**2).mean(),
                          atol=1e-6)


def test_fitnet_mask_excludes_padding():
    student, teacher = _features()
    mask = _mask()
    loss = FitNetLoss(4, 6)
    adapted = loss.projector(student)
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


def test_cwd_maps_channels_only_through_a_given_projector():
    assert isinstance(CWDLoss(6, 6).projector, torch.nn.Identity)
    loss = CWDLoss(4, 6, projector=dict(type='LinearAdapter'))
    assert isinstance(loss.projector, LinearAdapter)
    with pytest.raises(ValueError, match='projector=None maps nothing'):
        CWDLoss(4, 6)


def test_pkd_per_sample_matches_reference_and_is_pearson():
    student, teacher = _features(c_s=6)
    loss = PKDLoss(6, 6, loss_weight=2.0, per_sample=True, eps=0.)
    pearson = torch.stack([torch.corrcoef(torch.stack([student[i, j].flatten(),
                                                       teacher[i, j].flatten()]))[0, 1]
                           for i in range(2) for j in range(6)])
    # mean((zs - zt)^2) / 2 = 1 - r per (sample, channel) with biased statistics.
    assert torch.allclose(loss(student, teacher), 2.0 * (1 - pearson).mean(), atol=1e-5)
    # Invariant to a per-sample, per-channel affine change of either side.
    scale = torch.rand(2, 6, 1, 1) + 0.5
    assert torch.allclose(loss(student * scale + 3, teacher), loss(student, teacher), atol=1e-5)


def mmrazor_pkd(preds_s, preds_t, loss_weight=1.0):
    """MMRazor's ``PKDLoss`` (PKD's authors' release), rewritten in plain torch."""
    def norm(feat):
        n, c, h, w = feat.shape
        feat = feat.permute(1, 0, 2, 3).reshape(c, -1)
        mean = feat.mean(dim=-1, keepdim=True)
        std = feat.std(dim=-1, keepdim=True)  # unbiased
        feat = (feat - mean) / (std + 1e-6)
        return feat.reshape(c, n, h, w).permute(1, 0, 2, 3)

    return loss_weight * F.mse_loss(norm(preds_s), norm(preds_t)) / 2


def _offset_features(n=3, c=6, h=5, w=7):
    """Float64 features whose channels carry per-image offsets and scales (where per-image and
    batch statistics remove different information)."""
    g = torch.Generator().manual_seed(0)
    offsets = torch.randn(n, c, 1, 1, generator=g, dtype=torch.float64) * 2
    scales = torch.rand(n, c, 1, 1, generator=g, dtype=torch.float64) + 0.5
    teacher = torch.randn(n, c, h, w, generator=g, dtype=torch.float64) * scales + offsets
    student = teacher + torch.randn(n, c, h, w, generator=g, dtype=torch.float64)
    return student, teacher


def test_pkd_default_is_mmrazor_pkd_exactly():
    student, teacher = _offset_features()
    loss = PKDLoss(6, 6, loss_weight=6.0).double()
    torch.testing.assert_close(loss(student, teacher), mmrazor_pkd(student, teacher, 6.0),
                               rtol=1e-12, atol=0)
    # The gradient too.
    student.requires_grad_(True)
    (ours,) = torch.autograd.grad(loss(student, teacher), student)
    (theirs,) = torch.autograd.grad(mmrazor_pkd(student, teacher, 6.0), student)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize('path', PKD_CONFIGS, ids=lambda p: osp.relpath(p, ROOT))
def test_shipped_pkd_configs_are_the_authors_loss(path):
    """Each PKD entry of a shipped config is MMRazor's PKDLoss on features with per-image
    channel offsets (where our per-sample option differs by a few %)."""
    entries = [loss for loss in Config.fromfile(path).model.distill_losses.values()
               if loss.type == 'PKDLoss']
    assert entries
    for entry in entries:
        loss = MODELS.build(entry).double()
        student, _ = _offset_features(n=2, c=entry.in_channels, h=6, w=8)
        with torch.no_grad():  # MMRazor's loss sees the adapted student (its connector)
            adapted = loss.projector(student)
        teacher = adapted + torch.randn(adapted.shape, dtype=torch.float64)
        expected = mmrazor_pkd(adapted, teacher, entry.loss_weight)
        torch.testing.assert_close(loss(student, teacher), expected, rtol=1e-12, atol=0)
        per_sample = MODELS.build(dict(entry, per_sample=True)).double()
        per_sample.load_state_dict(loss.state_dict())
        assert abs(per_sample(student, teacher) / expected - 1) > 0.01


def test_pkd_without_ignore_padding_is_mmrazor_on_the_padded_batch():
    student, teacher = _offset_features()
    mask = torch.ones(3, 1, 5, 7, dtype=torch.bool)
    mask[1, :, 3:] = False
    loss = PKDLoss(6, 6, ignore_padding=False).double()
    torch.testing.assert_close(loss(student, teacher, mask), mmrazor_pkd(student, teacher),
                               rtol=1e-12, atol=0)


def test_pkd_batch_statistics_over_the_real_pixels():
    """With a mask: MMRazor's formula on the real pixels of the batch alone."""
    student, teacher = _offset_features(n=2)
    mask = _mask()
    loss = PKDLoss(6, 6, loss_weight=2.0).double()
    # The real pixels as one (1, C, P, 1) "image": MMRazor's statistics over them.
    real_s = student.permute(1, 0, 2, 3)[:, mask[:, 0]][None, :, :, None]
    real_t = teacher.permute(1, 0, 2, 3)[:, mask[:, 0]][None, :, :, None]
    torch.testing.assert_close(loss(student, teacher, mask), mmrazor_pkd(real_s, real_t, 2.0),
                               rtol=1e-12, atol=0)
    assert torch.isfinite(loss(torch.ones(1, 6, 2, 2), torch.ones(1, 6, 2, 2)))


def test_pkd_mask_equals_cropped_image_per_sample():
    student, teacher = _features(c_s=6)
    mask = _mask()
    loss = PKDLoss(6, 6, per_sample=True)
    whole = loss(student[:1], teacher[:1])
    crop = loss(student[1:, :, :3, :4], teacher[1:, :, :3, :4])
    # Per-sample statistics: the masked mean weights each sample by its valid pixel count.
    expected = (whole * 35 + crop * 12) / 47
    assert torch.allclose(loss(student, teacher, mask), expected, atol=1e-5)


def test_pkd_constant_student_channel_keeps_a_finite_gradient():
    student = torch.randn(2, 6, 4, 4)
    student[:, 2] = 1.5
    student.requires_grad_(True)
    PKDLoss(6, 6)(student, torch.randn(2, 6, 4, 4)).backward()
    assert torch.isfinite(student.grad).all()


def test_srd_matches_reference():
    student, teacher = _features()
    loss = SRDLoss(4, 6, loss_weight=2.0)
    # Reference: nn.BatchNorm2d without affine, train mode, eps 1e-4, on both sides.
    bn_s = torch.nn.BatchNorm2d(6, eps=1e-4, affine=False, track_running_stats=False)
    bn_t = torch.nn.BatchNorm2d(6, eps=1e-4, affine=False, track_running_stats=False)
    adapted = F.conv2d(student, loss.projector.weight[:, :, None, None], loss.projector.bias)
    expected = 2.0 * torch.log((bn_s(adapted) - bn_t(teacher)).abs().pow(4).sum())
    assert torch.allclose(loss(student, teacher), expected, atol=1e-5)


def test_srd_mask_equals_pixels_as_samples():
    student, teacher = _features()
    mask = _mask()
    loss = SRDLoss(4, 6)
    # Valid pixels as a (P, C) batch of samples through BatchNorm1d.
    adapted = loss.projector(student).permute(0, 2, 3, 1)[mask[:, 0]]
    target = teacher.permute(0, 2, 3, 1)[mask[:, 0]]
    bn = torch.nn.BatchNorm1d(6, eps=1e-4, affine=False, track_running_stats=False)
    expected = 2.0 * torch.log((bn(adapted) - bn(target)).abs().pow(4).sum())
    assert torch.allclose(loss(student, teacher, mask), expected, atol=1e-5)


def test_srd_affine_teacher_change_is_invisible():
    student, teacher = _features()
    loss = SRDLoss(4, 6)
    scale = torch.rand(1, 6, 1, 1) + 0.5
    assert torch.allclose(loss(student, teacher * scale - 2), loss(student, teacher), atol=1e-4)
