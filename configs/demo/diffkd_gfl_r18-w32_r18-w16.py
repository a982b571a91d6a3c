# CPU demo DiffKD on the GFL pair: the FCOS row's loss (kd, diff, ae weights 1, 5 DDIM steps, latent
# 32) on P3-P5.
_base_ = ['../_base_/distillers/demo_gfl_r18-w32_r18-w16_pair.py']
model = dict(distill_losses=dict(
    diffkd=dict(type='DiffKDLoss', in_channels=32, out_channels=64, latent_channels=32,
                inference_steps=5, kd_weight=1.0, diff_weight=1.0, ae_weight=1.0,
                loss_weight=1.0)))
