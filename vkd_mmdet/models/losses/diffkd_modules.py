"""Building blocks of DiffKD (Huang et al., "Knowledge Diffusion for Distillation", NeurIPS 2023):
the residual bottleneck, the noise predictor, the adaptive noise matcher and the teacher's linear
autoencoder. Used by :class:`DiffKDLoss`."""
from typing import Tuple

import torch.nn as nn
from torch import Tensor


class Bottleneck(nn.Module):
    """Residual ``1x1 -> 3x3 -> 1x1`` conv block with BatchNorm, ``channels // reduction`` wide."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.block = nn.Sequential(
            nn.Conv2d(channels, hidden, 1), nn.BatchNorm2d(hidden), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, padding=1), nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1), nn.BatchNorm2d(channels))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x)


class NoisePredictor(nn.Module):
    """epsilon-prediction network: a learned per-channel time embedding added to the input, two
    residual bottlenecks, then 1x1 conv + BatchNorm.

    Shape: ``x`` ``(N, C, H, W)``; ``timesteps`` ``(N,)`` or scalar long; output as ``x``.
    """

    def __init__(self, channels: int, num_embeddings: int = 1280) -> None:
        super().__init__()
        # 1280 entries as in the authors' code (more than the 1000 training steps).
        self.time_embedding = nn.Embedding(num_embeddings, channels)
        self.pred = nn.Sequential(Bottleneck(channels), Bottleneck(channels),
                                  nn.Conv2d(channels, channels, 1), nn.BatchNorm2d(channels))

    def forward(self, x: Tensor, timesteps: Tensor) -> Tensor:
        timesteps = timesteps.long().expand(x.shape[0])
        return self.pred(x + self.time_embedding(timesteps)[:, :, None, None])


class NoiseAdapter(nn.Module):
    """Adaptive noise matching: a per-sample weight ``gamma`` in (0, 1) of the student latent
    (bottleneck with reduction 8, global pool, Linear(C, 2), softmax, first entry).

    Shape: ``x`` ``(N, C, H, W)``; output ``(N,)``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.feat = nn.Sequential(Bottleneck(channels, reduction=8), nn.AdaptiveAvgPool2d(1))
        self.pred = nn.Linear(channels, 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.pred(self.feat(x).flatten(1)).softmax(dim=1)[:, 0]


class LinearAutoEncoder(nn.Module):
    """Teacher-side compression: encoder 1x1 conv + BatchNorm, decoder 1x1 conv.

    Shape: ``x`` ``(N, C, H, W)``; outputs ``(latent (N, C_latent, H, W), reconstruction)``.
    """

    def __init__(self, channels: int, latent_channels: int) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(channels, latent_channels, 1),
                                     nn.BatchNorm2d(latent_channels))
        self.decoder = nn.Conv2d(latent_channels, channels, 1)

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        latent = self.encoder(x)
        return latent, self.decoder(latent)
