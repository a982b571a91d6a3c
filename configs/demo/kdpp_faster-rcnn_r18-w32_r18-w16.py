# CPU demo KD++: the ND loss of ./nd_faster-rcnn_r18-w32_r18-w16.py (weight 1.5) + KL (T = 1,
# weight 1) on the RoI class logits, both on the RoIs sampled by the student's RoI head (the
# authors' detectron2 setting). Class centres as for the ND config.
_base_ = ['./nd_faster-rcnn_r18-w32_r18-w16.py']
model = dict(distill_losses=dict(
    kd=dict(type='LogitKDLoss', temperature=1.0,
            loss_weight=1.0)))
