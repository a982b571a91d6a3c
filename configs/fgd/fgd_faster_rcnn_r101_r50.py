# FGD on P2-P5, Faster R-CNN R101-FPN -> Faster R-CNN R50-FPN, 2x schedule.
# - teacher: mmdet::faster_rcnn/faster-rcnn_r101_fpn_2x_coco.py, mmdet zoo weights (39.8 box AP).
#   The paper's 38.4 -> 42.0 AP used a Cascade Mask R-CNN X101-32x4d (DCN) teacher, whose heads
#   differ from the student's (no inherit there); the authors also ship this R101 pair, with
#   inherit, without a published figure.
# - student: mmdet::faster_rcnn/faster-rcnn_r50_fpn_2x_coco.py; its data, 2x schedule, runtime.
# - distillation: the paper's two-stage weights (alpha 5e-5, beta 2.5e-5, gamma 5e-5, lambda 5e-7,
#   temperature 0.5) on the four levels the authors distil (their fpn_convs 0-3: strides 4-32,
#   not the max-pooled P6); neck, RPN head and RoI head start from the teacher's (inherit).
# Teacher, student, hooks and optimizer: the pair's base (configs/_base_/distillers/).
_base_ = ['../_base_/distillers/faster_rcnn_r101_r50_pair.py']
model = dict(
    inherit=('neck', 'rpn_head', 'roi_head'),
    distill_losses=dict(
        fgd=dict(type='FGDLoss', in_channels=256, out_channels=256, alpha_fgd=5e-5,
                 beta_fgd=2.5e-5, gamma_fgd=5e-5, lambda_fgd=5e-7, temperature=0.5,
                 strides=[4, 8, 16, 32])))
# Gradient norm clipped at 35, as in the authors' configs.
optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))
