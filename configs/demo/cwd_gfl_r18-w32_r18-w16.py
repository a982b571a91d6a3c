# CPU demo CWD on the GFL pair: the FCOS row's loss (channel-wise spatial-softmax KL after a 1x1
# adapter 32 -> 64; MMRazor's tau 1, weight 10) on P3-P5.
_base_ = ['../_base_/distillers/demo_gfl_r18-w32_r18-w16_pair.py']
model = dict(distill_losses=dict(
    cwd=dict(type='CWDLoss', in_channels=32, out_channels=64, tau=1.0, loss_weight=10.0,
             projector=dict(type='LinearAdapter'))))  # 32 -> 64 channels: a free 1x1 map
