# CPU demo GFL teacher (the head-distillation proxy of LD and CrossKD): mmdet's GFL on the
# synthetic shapes set, from scratch, with the FCOS teacher's backbone, FPN (64 channels over
# P3-P5), data, schedule and runtime (./teacher_fcos_r18-w32.py).
# - head: mmdet's GFLHead (quality focal loss, box-edge distributions of reg_max 16 bins, DFL +
#   GIoU, ATSS assignment) with a 2-conv tower; one square anchor per location of 4 x the stride
#   (32-128 px: the shapes span ~20-60 px; mmdet's COCO setting is 8 x).
_base_ = ['./teacher_fcos_r18-w32.py']

model = dict(
    _delete_=True,
    type='GFL',
    data_preprocessor={{_base_.model.data_preprocessor}},
    backbone={{_base_.model.backbone}},
    neck={{_base_.model.neck}},
    bbox_head=dict(
        type='GFLHead',
        num_classes={{_base_.model.bbox_head.num_classes}},
        in_channels=64,
        feat_channels=64,
        stacked_convs=2,
        anchor_generator=dict(
            type='AnchorGenerator', ratios=[1.0], octave_base_scale=4, scales_per_octave=1,
            strides=[8, 16, 32]),
        loss_cls=dict(
            type='QualityFocalLoss', use_sigmoid=True, beta=2.0, loss_weight=1.0),
        loss_dfl=dict(type='DistributionFocalLoss', loss_weight=0.25),
        reg_max=16,
        loss_bbox=dict(type='GIoULoss', loss_weight=2.0)),
    train_cfg=dict(
        assigner=dict(type='ATSSAssigner', topk=9), allowed_border=-1, pos_weight=-1,
        debug=False),
    test_cfg=dict(
        nms_pre=1000, min_bbox_size=0, score_thr=0.05, nms=dict(type='nms', iou_threshold=0.6),
        max_per_img=100))
