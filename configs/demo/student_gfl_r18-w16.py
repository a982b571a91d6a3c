# CPU demo GFL student: the teacher's GFL at half the width (ResNet-18 of base width 16, FPN of 32
# channels, a 2-conv head of 32 channels); data, schedule and runtime are the teacher's.
_base_ = ['./teacher_gfl_r18-w32.py']

model = dict(
    backbone=dict(base_channels=16),
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=32),
    bbox_head=dict(in_channels=32, feat_channels=32))
