# Methods stacked in one distiller, GFL R101 ms-2x -> GFL R50 1x: VkD on the five FPN levels
# (loss_vkd_p3 ... loss_vkd_p7) + CrossKD on the head (loss_crosskd_cls, loss_crosskd_box). Weights
# as in each method's own config. CrossKD's paper stacks PKD on the FPN the same way (43.7 ->
# 43.9 AP, published).
_base_ = ['../crosskd/crosskd_gfl_r101_r50.py']
model = dict(distill_losses=dict(
    vkd=dict(type='VkDLoss', in_channels=256, out_channels=256, loss_weight=4.0)))
