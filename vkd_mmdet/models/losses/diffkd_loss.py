"""DiffKD feature loss: denoise the student latent with a diffusion model of the teacher's."""
from typing import Dict, List, Mapping, Optional

import torch
import torch.nn as nn
from mmdet.registry import MODELS
from torch import Tensor

from ..projectors import LINEAR, build_projector
from .diffkd_modules import LinearAutoEncoder, NoiseAdapter, NoisePredictor
from .distill_loss import DistillLoss
from .feature_loss_utils import check_same_shape, masked_mean


@MODELS.register_module()
class DiffKDLoss(DistillLoss):
    """DiffKD for one pair of feature maps (Huang et al., "Knowledge Diffusion for Distillation",
    NeurIPS 2023). Returns three losses, logged separately.

    - ``ae``: a linear autoencoder compresses the teacher feature ``t`` to a latent
      ``z_t = enc(t)``; ``L_ae = MSE(dec(enc(t)), t)``. ``z_t`` is then detached.
    - ``diff``: the noise predictor learns the teacher latents with the DDPM epsilon loss:
      ``L_diff = MSE(eps_hat(sqrt(a_k) z_t + sqrt(1 - a_k) eps, k), eps)`` at a random step ``k``
      per sample (``num_train_timesteps`` steps, linear betas ``beta_start`` .. ``beta_end``,
      ``a_k`` the cumulative product of ``1 - beta``).
    - ``kd``: the student feature is mapped to the latent by ``projector`` (``z_s``), mixed with
      noise at a learned per-sample ratio (adaptive noise matching:
      ``gamma z_s + (1 - gamma) eps``), denoised by deterministic DDIM (eta 0) over
      ``inference_steps`` steps, the second half of a ``2 * inference_steps`` schedule
      (t = 400, 300, 200, 100, 0 by default) **with gradients**, refined by 1x1 conv + BatchNorm,
      and ``L_kd = MSE(refined, z_t)``.

    Each term is multiplied by its own weight and by ``loss_weight``. Applying DiffKD per FPN
    level is our adaptation (the authors did not publish their detection code). With
    ``ignore_padding`` the three MSEs average over the real pixels of ``valid_mask`` only (the
    BatchNorm statistics still include padding).

    Args:
        in_channels (int): student channels ``C_s``.
        out_channels (int): teacher channels ``C_t``.
        latent_channels (int, optional): autoencoder latent ``C``. Defaults to ``C_t // 2``
            (the authors' default).
        inference_steps (int): DDIM steps. Defaults to 5.
        num_train_timesteps (int): DDPM steps. Defaults to 1000.
        beta_start (float): first beta. Defaults to 1e-4.
        beta_end (float): last beta. Defaults to 0.02.
        kd_weight (float): weight of ``L_kd``. Defaults to 1.0.
        diff_weight (float): weight of ``L_diff``. Defaults to 1.0.
        ae_weight (float): weight of ``L_ae``. Defaults to 1.0.
        loss_weight (float): multiplies all three. Defaults to 1.0.
        projector (dict): the student's map ``C_s -> latent`` (``.latent_projector``: not into
            the teacher's channels). Defaults to
            ``dict(type='LinearAdapter')`` (a 1x1 conv with bias).
        ignore_padding (bool): use ``valid_mask`` when given. Defaults to True.
        init_cfg (dict, optional): mmengine init config.

    Shape:
        - student: ``(N, C_s, H, W)``; teacher: ``(N, C_t, H, W)`` (detached);
          valid_mask: ``(N, 1, H, W)`` bool or None.
        - output: ``dict(kd=scalar, diff=scalar, ae=scalar)``.

    Note:
        All trainable parts (projector, noise predictor, noise adapter, autoencoder, refiner) live
        in this module and train with the student. The BatchNorms need a batch of more than one
        pixel per channel.

    Config:
        ``dict(type='DiffKDLoss', in_channels=256, out_channels=256, latent_channels=128)``
    """

    extras = ('valid_mask',)

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 latent_channels: Optional[int] = None,
                 inference_steps: int = 5,
                 num_train_timesteps: int = 1000,
                 beta_start: float = 1e-4,
                 beta_end: float = 0.02,
                 kd_weight: float = 1.0,
                 diff_weight: float = 1.0,
                 ae_weight: float = 1.0,
                 loss_weight: float = 1.0,
                 projector: Mapping = LINEAR,
                 ignore_padding: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(loss_weight, init_cfg)
        if not 0 < 2 * inference_steps <= num_train_timesteps:
            raise ValueError(f'DiffKDLoss: inference_steps={inference_steps} must be in '
                             f'1..num_train_timesteps/2 ({num_train_timesteps // 2})')
        latent_channels = latent_channels or max(out_channels // 2, 1)
        self.latent_projector = build_projector(projector, in_channels, latent_channels,
                                                'DiffKDLoss')
        self.autoencoder = LinearAutoEncoder(out_channels, latent_channels)
        self.noise_predictor = NoisePredictor(latent_channels,
                                              num_embeddings=max(1280, num_train_timesteps))
        self.noise_adapter = NoiseAdapter(latent_channels)
        self.refiner = nn.Sequential(nn.Conv2d(latent_channels, latent_channels, 1),
                                     nn.BatchNorm2d(latent_channels))
        betas = torch.linspace(beta_start, beta_end, num_train_timesteps, dtype=torch.float64)
        self.register_buffer('alphas_cumprod', torch.cumprod(1 - betas, 0).float(),
                             persistent=False)
        # DDIM with 2 * inference_steps steps over the schedule, keeping its less noisy half.
        self.step_ratio = num_train_timesteps // (2 * inference_steps)
        self.denoise_timesteps: List[int] = [self.step_ratio * k
                                             for k in reversed(range(inference_steps))]
        self.num_train_timesteps = num_train_timesteps
        self.kd_weight = kd_weight
        self.diff_weight = diff_weight
        self.ae_weight = ae_weight
        self.ignore_padding = ignore_padding

    def ddpm_loss(self, latent: Tensor, noise: Tensor, timesteps: Tensor,
                  valid_mask: Optional[Tensor] = None) -> Tensor:
        """DDPM epsilon loss of the noise predictor on ``latent`` noised at ``timesteps`` (N,)."""
        alpha = self.alphas_cumprod[timesteps][:, None, None, None]
        noisy = alpha.sqrt() * latent + (1 - alpha).sqrt() * noise
        return masked_mean((self.noise_predictor(noisy, timesteps) - noise).square(), valid_mask)

    def denoise(self, x: Tensor) -> Tensor:
        """Deterministic DDIM (eta 0) from ``x`` over ``denoise_timesteps``, with gradients."""
        for t in self.denoise_timesteps:
            alpha = self.alphas_cumprod[t]
            prev = t - self.step_ratio
            alpha_prev = self.alphas_cumprod[prev] if prev >= 0 else alpha.new_ones(())
            eps = self.noise_predictor(x, torch.tensor(t, device=x.device))
            x0 = (x - (1 - alpha).sqrt() * eps) / alpha.sqrt()
            x = alpha_prev.sqrt() * x0 + (1 - alpha_prev).sqrt() * eps
        return x

    def forward(self, student: Tensor, teacher: Tensor,
                valid_mask: Optional[Tensor] = None) -> Dict[str, Tensor]:
        mask = valid_mask if self.ignore_padding else None
        latent_student = self.latent_projector(student)
        latent_teacher, reconstruction = self.autoencoder(teacher)
        check_same_shape('DiffKDLoss', latent_student, latent_teacher)
        loss_ae = masked_mean((reconstruction - teacher).square(), mask)
        latent_teacher = latent_teacher.detach()

        timesteps = torch.randint(0, self.num_train_timesteps, (latent_teacher.shape[0],),
                                  device=latent_teacher.device)
        loss_diff = self.ddpm_loss(latent_teacher, torch.randn_like(latent_teacher), timesteps,
                                   mask)

        gamma = self.noise_adapter(latent_student)[:, None, None, None]
        noisy = gamma * latent_student + (1 - gamma) * torch.randn_like(latent_student)
        refined = self.refiner(self.denoise(noisy))
        loss_kd = masked_mean((refined - latent_teacher).square(), mask)
        scale = self.loss_weight
        return dict(kd=scale * self.kd_weight * loss_kd,
                    diff=scale * self.diff_weight * loss_diff,
                    ae=scale * self.ae_weight * loss_ae)
