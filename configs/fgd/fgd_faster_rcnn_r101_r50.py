# FGD on P2-P5, Faster R-CNN R101-FPN -> Faster R-CNN R50-FPN, 2x schedule.
# - teacher: mmdet::faster_rcnn/faster-rcnn_r101_fpn_2x_coco.py, mmdet zoo weights (39.8 box AP).
#   The paper's 38.4 -> 42.0 AP used a Cascade Mask R-CNN X101-32x4d (DCN) teacher, whose heads
#   differ from the student's (no inherit there); the authors also ship this R101 pair, with
#   inherit, without a published figure.
# - student: mmdet::faster_rcnn/faster-rcnn_r50_fpn_2x_coco.py; its data, 2x schedule, runtime.
# - distillation: the paper's two-stage weights (alpha 5e-5, beta 2.5e-5, gamma 5e-5, lambda 5e-7,
#   temperature 0.5) on the four levels the authors distil (their fpn_convs 0-3: strides 4-32,
#   not the max-pooled P6); neck, RPN head and RoI head start from the teacher's (inherit).
_base_ = ['mmdet::faster_rcnn/faster-rcnn_r50_fpn_2x_coco.py']
custom_imports = dict(imports=['vkd_mmdet'], allow_failed_imports=False)
# Training ends by exporting the student as a plain mmdet model to <work_dir>/student;
# checkpoints keep the RNG states, so --resume continues the random streams.
custom_hooks = [dict(type='ExportStudentHook'), dict(type='RNGStateHook'),
                dict(type='ProjectorDecayCheckHook')]

teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/faster_rcnn/faster_rcnn_r101_fpn_2x_coco/faster_rcnn_r101_fpn_2x_coco_bbox_mAP-0.398_20200504_210455-1d2dac9c.pth'
model = dict(
    _delete_=True,
    type='DetectionDistiller',
    student=dict(cfg_path='mmdet::faster_rcnn/faster-rcnn_r50_fpn_2x_coco.py'),
    teacher=dict(cfg_path='mmdet::faster_rcnn/faster-rcnn_r101_fpn_2x_coco.py'),
    teacher_ckpt=teacher_ckpt,
    inherit=('neck', 'rpn_head', 'roi_head'),
    distill_losses=dict(
        fgd=dict(type='FGDLoss', in_channels=256, out_channels=256, alpha_fgd=5e-5,
                 beta_fgd=2.5e-5, gamma_fgd=5e-5, lambda_fgd=5e-7, temperature=0.5,
                 strides=[4, 8, 16, 32])))

# Gradient norm clipped at 35, as in the authors' configs. An orthogonal projector (a
# projector=dict(type='OrthogonalProjector') swap) would take no weight decay.
optim_wrapper = dict(
    clip_grad=dict(max_norm=35, norm_type=2),
    paramwise_cfg=dict(custom_keys={'projector.raw_weight': dict(decay_mult=0.0)}))
# A fixed seed (with RNGStateHook) makes `--resume` bit-exact.
randomness = dict(seed=0)
