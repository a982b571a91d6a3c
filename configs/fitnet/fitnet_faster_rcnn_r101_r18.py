# FitNet (1x1 conv adapter + MSE) on all five FPN levels (P2-P6), Faster R-CNN R101 -> R18.
#
# Everything but the loss comes from the pair's base (configs/_base_/distillers/).
# Weight 1.0 is ours.
_base_ = ['../_base_/distillers/faster_rcnn_r101_r18_pair.py']
model = dict(distill_losses=dict(
    fitnet=dict(type='FitNetLoss', in_channels=256, out_channels=256, loss_weight=1.0)))
