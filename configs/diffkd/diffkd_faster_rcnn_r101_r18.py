# DiffKD on all five FPN levels (as in the authors' earlier MasKD detection setup), faster_rcnn
# R101 -> R18: kd, diff and ae losses with weight 1 each (the paper), 5 DDIM steps at
# t = 400..0, latent 128 = 256 // 2 (the authors' autoencoder default). Per-level application is
# ours (no detection code published); restrict it with e.g. levels=[0, 1, 2].
#
# Everything but the loss comes from the pair's base (configs/_base_/distillers/).
_base_ = ['../_base_/distillers/faster_rcnn_r101_r18_pair.py']
model = dict(distill_losses=dict(
    diffkd=dict(type='DiffKDLoss', in_channels=256, out_channels=256, latent_channels=128,
                inference_steps=5, kd_weight=1.0, diff_weight=1.0, ae_weight=1.0)))
