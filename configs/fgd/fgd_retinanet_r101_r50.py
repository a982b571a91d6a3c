# FGD on all five FPN levels (P3-P7), RetinaNet R101-FPN -> RetinaNet R50-FPN, 2x schedule.
# - teacher: mmdet::retinanet/retinanet_r101_fpn_2x_coco.py, mmdet zoo weights (38.9 box AP).
#   The paper's 37.4 -> 40.7 AP used a RetinaNet X101-64x4d 1x teacher (41.0 box AP).
# - student: mmdet::retinanet/retinanet_r50_fpn_2x_coco.py; its data, 2x schedule and runtime.
# - distillation: the paper's one-stage weights (alpha 1e-3, beta 5e-4, gamma 5e-4, lambda 5e-6,
#   temperature 0.5); the student's neck and head start from the teacher's (inherit), as in the
#   authors' RetinaNet config.
# Teacher, student, hooks and optimizer: the pair's base (configs/_base_/distillers/).
_base_ = ['../_base_/distillers/retinanet_r101_r50_pair.py']
model = dict(
    inherit=('neck', 'bbox_head'),
    distill_losses=dict(
        fgd=dict(type='FGDLoss', in_channels=256, out_channels=256, alpha_fgd=1e-3,
                 beta_fgd=5e-4, gamma_fgd=5e-4, lambda_fgd=5e-6, temperature=0.5)))
# Gradient norm clipped at 35, as in the authors' configs.
optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))
