# CPU demo MGD on the GFL pair: the FCOS row's loss (the paper's one-stage alpha 2e-5, lambda 0.65)
# after a 1x1 adapter 32 -> 64 on P3-P5; no inherit (the widths differ).
_base_ = ['../_base_/distillers/demo_gfl_r18-w32_r18-w16_pair.py']
model = dict(distill_losses=dict(
    mgd=dict(type='MGDLoss', in_channels=32, out_channels=64, alpha_mgd=2e-5, lambda_mgd=0.65,
             loss_weight=1.0,
             projector=dict(type='LinearAdapter'))))  # 32 -> 64 channels: a free 1x1 map
