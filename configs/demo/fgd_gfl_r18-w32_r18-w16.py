# CPU demo FGD on the GFL pair: the FCOS row's loss (the paper's FCOS weights 1.6e-3, 8e-4, 8e-4,
# 8e-6, T 0.8) after a 1x1 adapter 32 -> 64 on P3-P5; no inherit (the widths differ).
_base_ = ['../_base_/distillers/demo_gfl_r18-w32_r18-w16_pair.py']
model = dict(distill_losses=dict(
    fgd=dict(type='FGDLoss', in_channels=32, out_channels=64, alpha_fgd=1.6e-3, beta_fgd=8e-4,
             gamma_fgd=8e-4, lambda_fgd=8e-6, temperature=0.8, loss_weight=1.0,
             projector=dict(type='LinearAdapter'))))  # 32 -> 64 channels: a free 1x1 map
