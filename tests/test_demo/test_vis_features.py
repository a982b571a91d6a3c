import numpy as np
import pytest
import torch
from tool_scripts import load_tool

vis_features = load_tool('analysis/vis_features.py')


def test_principal_components_match_numpy_eigendecomposition():
    torch.manual_seed(0)
    # Anisotropic pixels: three clearly separated variances.
    pixels = torch.randn(200, 6) * torch.tensor([5.0, 3.0, 2.0, 0.5, 0.2, 0.1])
    feature = pixels.T.reshape(6, 10, 20)
    mean, comps = vis_features.principal_components(feature)
    data = pixels.double().numpy()
    cov = np.cov(data - data.mean(0), rowvar=False)
    eigvals, eigvecs = np.linalg.eigh(cov)
    top = eigvecs[:, np.argsort(eigvals)[::-1][:3]]
    np.testing.assert_allclose(mean.numpy(), data.mean(0), atol=1e-5)
    # Directions up to sign.
    np.testing.assert_allclose(np.abs((comps.double().numpy() * top).sum(0)), 1.0, atol=1e-4)


def test_principal_components_pad_when_fewer_channels_than_colours():
    mean, comps = vis_features.principal_components(torch.randn(2, 4, 4))
    assert comps.shape == (2, 3) and torch.all(comps[:, 2] == 0)


def test_cosine_similarity_and_standardise():
    torch.manual_seed(0)
    a, b = torch.randn(8, 5, 7), torch.randn(8, 5, 7)
    assert vis_features.cosine_similarity(a, a) == pytest.approx(1.0, abs=1e-6)
    assert vis_features.cosine_similarity(a, -2 * a) == pytest.approx(-1.0, abs=1e-6)
    va, vb = a.flatten(1).T, b.flatten(1).T
    expected = ((va * vb).sum(1) / (va.norm(dim=1) * vb.norm(dim=1))).mean().item()
    assert vis_features.cosine_similarity(a, b) == pytest.approx(expected, abs=1e-6)
    s = vis_features.standardise(3 * a + 1)
    torch.testing.assert_close(s.flatten(1).mean(1), torch.zeros(8), atol=1e-5, rtol=0)
    torch.testing.assert_close(s.flatten(1).std(1), torch.ones(8), atol=1e-4, rtol=0)


def test_student_map_is_the_projector_into_the_teacher_channels():
    from vkd_mmdet.models.losses import DiffKDLoss, SRDLoss, VkDLoss
    vkd, srd = VkDLoss(4, 6), SRDLoss(4, 6)
    linear = VkDLoss(4, 6, projector=dict(type='LinearAdapter', bias=False))
    assert vis_features.student_map(vkd) is vkd.projector
    assert vis_features.student_map(linear) is linear.projector
    assert vis_features.student_map(srd) is srd.projector
    # DiffKD's latent_projector maps into its latent space, not the teacher's channels.
    assert vis_features.student_map(DiffKDLoss(4, 6)) is None
