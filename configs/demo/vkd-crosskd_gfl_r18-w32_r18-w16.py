# CPU demo stacked row: VkD on P3-P5 (./vkd_gfl_r18-w32_r18-w16.py) + CrossKD on the head
# (./crosskd_gfl_r18-w32_r18-w16.py), each with its own row's weights.
_base_ = ['./crosskd_gfl_r18-w32_r18-w16.py']
model = dict(distill_losses=dict(
    vkd=dict(type='VkDLoss', in_channels=32, out_channels=64, loss_weight=4.0)))
