# CPU demo CWD (channel-wise spatial-softmax KL, 1x1 adapter 32 -> 64) on P3-P5; everything else
# from the VkD demo config. tau 1 and weight 10 are MMRazor's published CWD setting.
_base_ = ['../_base_/distillers/demo_fcos_r18-w32_r18-w16_pair.py']
model = dict(distill_losses=dict(
    cwd=dict(type='CWDLoss', in_channels=32, out_channels=64, tau=1.0, loss_weight=10.0,
             projector=dict(type='LinearAdapter'))))  # 32 -> 64 channels: a free 1x1 map
