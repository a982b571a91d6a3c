"""DiffKDLoss: DDPM / DDIM maths against a plain-torch schedule, denoising steps, gradients."""
import torch
import torch.nn.functional as F

from vkd_mmdet.models.losses import DiffKDLoss


def _alphas_cumprod(steps=1000, start=1e-4, end=0.02):
    alphas = [1.0]
    for k in range(steps):
        alphas.append(alphas[-1] * (1 - (start + (end - start) * k / (steps - 1))))
    return torch.tensor(alphas[1:])


def _loss(**kwargs):
    return DiffKDLoss(in_channels=4, out_channels=8, latent_channels=8, **kwargs)


def test_returns_three_named_losses():
    loss = _loss()
    out = loss(torch.randn(2, 4, 6, 6), torch.randn(2, 8, 6, 6))
    assert set(out) == {'kd', 'diff', 'ae'}
    assert all(v.dim() == 0 and torch.isfinite(v) for v in out.values())


def test_denoising_steps_are_400_to_0_with_gradients():
    loss = _loss()
    calls = []
    loss.noise_predictor.register_forward_pre_hook(
        lambda _m, args: calls.append(args[1].detach().clone()))
    student = torch.randn(2, 4, 6, 6, requires_grad=True)
    out = loss(student, torch.randn(2, 8, 6, 6))
    # First call: DDPM training at a random step per sample; then the 5 DDIM steps.
    assert len(calls) == 6 and calls[0].shape == (2,)
    assert [int(t) for t in calls[1:]] == [400, 300, 200, 100, 0]
    out['kd'].backward()
    assert student.grad.abs().sum() > 0
    for part in (loss.noise_predictor, loss.noise_adapter, loss.latent_projector, loss.refiner):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())
    # The teacher latent is a detached target: L_kd does not train the autoencoder.
    assert all(p.grad is None for p in loss.autoencoder.parameters())


def test_denoise_matches_reference_ddim():
    loss = _loss()
    alphas = _alphas_cumprod()
    assert torch.allclose(loss.alphas_cumprod, alphas, rtol=1e-5)
    x = torch.randn(2, 8, 5, 5)
    ref = x
    for t in (400, 300, 200, 100, 0):
        eps = loss.noise_predictor(ref, torch.tensor(t))
        a, a_prev = alphas[t], (alphas[t - 100] if t >= 100 else torch.tensor(1.))
        x0 = (ref - (1 - a).sqrt() * eps) / a.sqrt()
        ref = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
    assert torch.allclose(loss.denoise(x), ref, atol=1e-4)


def test_ddim_inverts_exact_noise():
    # With a perfect epsilon-predictor, DDIM from t=400 recovers the clean latent exactly.
    loss = _loss(inference_steps=5)
    clean, noise = torch.randn(2, 8, 3, 3), torch.randn(2, 8, 3, 3)
    a = loss.alphas_cumprod[400]
    noisy = a.sqrt() * clean + (1 - a).sqrt() * noise
    loss.noise_predictor.forward = lambda x, t: noise
    assert torch.allclose(loss.denoise(noisy), clean, atol=1e-4)


def test_ddpm_loss_matches_reference():
    loss = _loss()
    latent, noise = torch.randn(2, 8, 4, 4), torch.randn(2, 8, 4, 4)
    steps = torch.tensor([10, 900])
    a = _alphas_cumprod()[steps][:, None, None, None]
    noisy = a.sqrt() * latent + (1 - a).sqrt() * noise
    expected = F.mse_loss(loss.noise_predictor(noisy, steps), noise)
    assert torch.allclose(loss.ddpm_loss(latent, noise, steps), expected, atol=1e-5)


def test_ae_loss_and_weights():
    teacher = torch.randn(2, 8, 4, 4)
    loss = _loss(ae_weight=3.0, loss_weight=0.5)
    _, recon = loss.autoencoder(teacher)
    out = loss(torch.randn(2, 4, 4, 4), teacher)
    assert torch.allclose(out['ae'], 1.5 * F.mse_loss(recon, teacher), atol=1e-6)


def test_mask_excludes_padding_from_ae():
    teacher = torch.randn(2, 8, 4, 4)
    mask = torch.ones(2, 1, 4, 4, dtype=torch.bool)
    mask[1, :, 2:] = False
    loss = _loss()
    _, recon = loss.autoencoder(teacher)
    squared = (recon - teacher).square().permute(0, 2, 3, 1)[mask[:, 0]]
    out = loss(torch.randn(2, 4, 4, 4), teacher, mask)
    assert torch.allclose(out['ae'], squared.mean(), atol=1e-6)
