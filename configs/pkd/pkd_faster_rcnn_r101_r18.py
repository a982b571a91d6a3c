# PKD (per-channel standardised MSE / 2) on all five FPN levels, Faster R-CNN R101 -> R18.
# Weight 6 is in the paper's 6-10 range (Faster R-CNN R50 2x 38.4 -> 40.3 AP); per-sample
# statistics as specified (per_sample=False reproduces MMRazor's batch statistics).
# Everything but the loss comes from the VkD config.
_base_ = ['../vkd/faster_rcnn_r101_r18.py']
model = dict(distill_losses=dict(
    _delete_=True,
    pkd=dict(type='PKDLoss', in_channels=256, out_channels=256, loss_weight=6.0)))
