# CPU demo student: the teacher's FCOS at half the width (ResNet-18 of base width 16, FPN of 32
# channels, a 1-conv head); data, schedule and runtime are the teacher's.
_base_ = ['./teacher_fcos_r18-w32.py']

model = dict(
    backbone=dict(base_channels=16),
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=32),
    bbox_head=dict(in_channels=32, feat_channels=32, stacked_convs=1))
