# ND loss alone on RoI box-head embeddings (1024-d, after ReLU) of the RoIs sampled by the
# student's RoI head; teacher embeddings from the teacher's box head on the same RoIs.
# Faster R-CNN R101 -> R18 only (needs a RoI head). Weight 1.5 is KD++'s R101 -> R18 setting.
# Class centres (80 classes + background) first, over the RoIs of the training sampler as in the
# authors' code (`--rois gt`: GT boxes and the teacher's negatives, cheaper, not the paper's):
#   python tools/compute_class_centers.py configs/nd/nd_faster_rcnn_r101_r18.py
#
# Everything but the loss comes from the pair's base (configs/_base_/distillers/).
_base_ = ['../_base_/distillers/faster_rcnn_r101_r18_pair.py']
class_centers = 'work_dirs/class_centers/faster_rcnn_r101_fpn_2x_coco.pth'
model = dict(distill_losses=dict(
    nd=dict(type='NDLoss', num_classes=80, in_channels=1024, out_channels=1024,
            class_centers=class_centers, loss_weight=1.5)))
