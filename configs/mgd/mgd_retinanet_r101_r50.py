# MGD on all five FPN levels (P3-P7), RetinaNet R101-FPN -> RetinaNet R50-FPN, 2x schedule.
# - teacher: mmdet::retinanet/retinanet_r101_fpn_2x_coco.py, mmdet zoo weights (38.9 box AP).
#   The paper's 37.4 -> 41.0 AP used a RetinaNet X101-64x4d (multi-scale 3x) teacher.
# - student: mmdet::retinanet/retinanet_r50_fpn_2x_coco.py; its data, 2x schedule and runtime.
# - distillation: the paper's one-stage setting (alpha 2e-5, a cell dropped with probability
#   0.65); the random masks come from the distiller's checkpointed generator (exact resume);
#   the student's neck and head start from the teacher's (inherit), as in the authors' config.
# Teacher, student, hooks and optimizer: the pair's base (configs/_base_/distillers/).
_base_ = ['../_base_/distillers/retinanet_r101_r50_pair.py']
model = dict(
    inherit=('neck', 'bbox_head'),
    distill_losses=dict(
        mgd=dict(type='MGDLoss', in_channels=256, out_channels=256, alpha_mgd=2e-5,
                 lambda_mgd=0.65)))
# Gradient norm clipped at 35, as in the authors' configs.
optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))
