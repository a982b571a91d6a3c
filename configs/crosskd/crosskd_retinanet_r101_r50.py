# CrossKD, RetinaNet R101 2x -> RetinaNet R50 2x (Wang et al., CVPR 2024: 37.4 -> 39.7 AP on
# COCO val, published): cross-head predictions from tower conv 3; quality-focal KD on the classes
# (weight 1.0), GIoU between the decoded cross-head and teacher boxes (weight 1.0).
# Everything but the loss comes from the pair's base (configs/_base_/distillers/).
_base_ = ['../_base_/distillers/retinanet_r101_r50_pair.py']
model = dict(distill_losses=dict(
    crosskd=dict(type='CrossKDLoss', tower_conv=3, cls_weight=1.0, box_weight=1.0,
                 loss_box=dict(type='GIoULoss'))))
