# PKD on all five FPN levels, Faster R-CNN R101 -> R18: the authors' loss (MMRazor's PKDLoss,
# which gave the paper's figures): per-channel standardisation over the whole batch (N, H, W)
# with the unbiased std + 1e-6, then MSE / 2. Our only change is keeping mmdet's batch padding
# out of the statistics (ignore_padding, as for every loss here; False gives MMRazor's numbers
# on padded batches too). per_sample=True is our per-image variant, not the paper's.
# Weight 6 is in the paper's 6-10 range (Faster R-CNN R50 2x 38.4 -> 40.3 AP).
#
# Everything but the loss comes from the pair's base (configs/_base_/distillers/).
_base_ = ['../_base_/distillers/faster_rcnn_r101_r18_pair.py']
model = dict(distill_losses=dict(
    pkd=dict(type='PKDLoss', in_channels=256, out_channels=256, loss_weight=6.0,
             per_sample=False)))
