# FGD on all five FPN levels (P3-P7), GFL R101-FPN -> GFL R50-FPN, 1x schedule.
# - teacher: mmdet::gfl/gfl_r101_fpn_ms-2x_coco.py, mmdet zoo weights (44.7 box AP): the teacher
#   of the authors' GFL config (40.2 -> 43.5 AP).
# - student: mmdet::gfl/gfl_r50_fpn_1x_coco.py; its data, 1x schedule and runtime.
# - distillation: the one-stage weights of the authors' GFL config (alpha 1e-3, beta 5e-4,
#   gamma 5e-4, lambda 5e-6, temperature 0.5); neck and head start from the teacher's (inherit).
# Teacher, student, hooks and optimizer: the pair's base (configs/_base_/distillers/).
_base_ = ['../_base_/distillers/gfl_r101_r50_pair.py']
model = dict(
    inherit=('neck', 'bbox_head'),
    distill_losses=dict(
        fgd=dict(type='FGDLoss', in_channels=256, out_channels=256, alpha_fgd=1e-3,
                 beta_fgd=5e-4, gamma_fgd=5e-4, lambda_fgd=5e-6, temperature=0.5)))
# Gradient norm clipped at 35, as in the authors' configs.
optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))
