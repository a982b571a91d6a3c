# CPU demo CrossKD on the GFL pair with the paper's GFL weights (classes 1.0, boxes 4.0). The
# student's towers are cut after conv 1 of 2 (the paper: conv 3 of 4; either way one conv of the
# teacher's tower runs on the student's feature), mapped 32 -> 64 channels by a 1x1 convolution.
_base_ = ['../_base_/distillers/demo_gfl_r18-w32_r18-w16_pair.py']
model = dict(distill_losses=dict(
    crosskd=dict(type='CrossKDLoss', tower_conv=1, cls_weight=1.0, box_weight=4.0,
                 loss_weight=1.0)))
