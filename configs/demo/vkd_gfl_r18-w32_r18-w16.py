# CPU demo VkD on the GFL pair: one orthogonal projector per level of P3-P5 (32 -> 64 channels),
# weight 4.0 (the authors' detection weight), as on the FCOS pair.
_base_ = ['../_base_/distillers/demo_gfl_r18-w32_r18-w16_pair.py']
model = dict(distill_losses=dict(
    vkd=dict(type='VkDLoss', in_channels=32, out_channels=64, loss_weight=4.0)))
