# CPU demo two-stage student: the teacher's Faster R-CNN at half the width (ResNet-18 of base width
# 16, FPN of 32 channels, 128-d box-head embeddings); data, schedule and runtime are the teacher's.
_base_ = ['./teacher_faster-rcnn_r18-w32.py']

model = dict(
    backbone=dict(base_channels=16),
    neck=dict(in_channels=[16, 32, 64], out_channels=32),
    rpn_head=dict(in_channels=32, feat_channels=32),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=32),
        bbox_head=dict(in_channels=32, fc_out_channels=128)))
