# KD++ for detection: ND loss (weight 1.5) on RoI box-head embeddings + KL (T = 1, weight 1) on
# the RoI class logits, both on the RoIs sampled by the student's RoI head (the authors'
# detectron2 setting, Faster R-CNN R101 -> R18). Class centres as for configs/nd.
_base_ = ['../nd/nd_faster_rcnn_r101_r18.py']
model = dict(distill_losses=dict(
    kd=dict(type='LogitKDLoss', temperature=1.0,
            loss_weight=1.0)))
