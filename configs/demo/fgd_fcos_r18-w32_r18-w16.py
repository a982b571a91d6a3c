# CPU demo FGD on P3-P5: the paper's FCOS weights (alpha 1.6e-3, beta 8e-4, gamma 8e-4,
# lambda 8e-6, temperature 0.8) after a 1x1 adapter 32 -> 64. No inherit: the demo teacher is
# twice as wide as the student, so its neck and head cannot be copied. Everything else from the
# demo pair's base. loss_weight (1) multiplies every term: the weight sweep scales it.
_base_ = ['../_base_/distillers/demo_fcos_r18-w32_r18-w16_pair.py']
model = dict(distill_losses=dict(
    fgd=dict(type='FGDLoss', in_channels=32, out_channels=64, alpha_fgd=1.6e-3, beta_fgd=8e-4,
             gamma_fgd=8e-4, lambda_fgd=8e-6, temperature=0.8, loss_weight=1.0,
             projector=dict(type='LinearAdapter'))))  # 32 -> 64 channels: a free 1x1 map
