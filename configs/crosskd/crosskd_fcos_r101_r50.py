# CrossKD, FCOS R101-caffe ms-2x -> FCOS R50-caffe ms-2x (Wang et al., CVPR 2024: 38.5 -> 41.1 AP
# on COCO val, published): cross-head predictions from tower conv 2; quality-focal KD on the
# classes (weight 0.4), IoU loss (mmdet's IoULoss, FCOS's own box loss) between the decoded
# cross-head and teacher boxes (weight 0.75); centerness is not distilled.
# Everything but the loss comes from the pair's base (configs/_base_/distillers/).
_base_ = ['../_base_/distillers/fcos_r101_r50_pair.py']
model = dict(distill_losses=dict(
    crosskd=dict(type='CrossKDLoss', tower_conv=2, cls_weight=0.4, box_weight=0.75,
                 loss_box=dict(type='IoULoss'))))
