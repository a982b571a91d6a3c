# FGD on all five FPN levels (P3-P7), GFL R101-FPN -> GFL R50-FPN, 1x schedule.
# - teacher: mmdet::gfl/gfl_r101_fpn_ms-2x_coco.py, mmdet zoo weights (44.7 box AP): the teacher
#   of the authors' GFL config (40.2 -> 43.5 AP).
# - student: mmdet::gfl/gfl_r50_fpn_1x_coco.py; its data, 1x schedule and runtime.
# - distillation: the one-stage weights of the authors' GFL config (alpha 1e-3, beta 5e-4,
#   gamma 5e-4, lambda 5e-6, temperature 0.5); neck and head start from the teacher's (inherit).
_base_ = ['mmdet::gfl/gfl_r50_fpn_1x_coco.py']
custom_imports = dict(imports=['vkd_mmdet'], allow_failed_imports=False)
# Training ends by exporting the student as a plain mmdet model to <work_dir>/student;
# checkpoints keep the RNG states, so --resume continues the random streams.
custom_hooks = [dict(type='ExportStudentHook'), dict(type='RNGStateHook'),
                dict(type='ProjectorDecayCheckHook')]

teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/gfl/gfl_r101_fpn_mstrain_2x_coco/gfl_r101_fpn_mstrain_2x_coco_20200629_200126-dd12f847.pth'
model = dict(
    _delete_=True,
    type='DetectionDistiller',
    student=dict(cfg_path='mmdet::gfl/gfl_r50_fpn_1x_coco.py'),
    teacher=dict(cfg_path='mmdet::gfl/gfl_r101_fpn_ms-2x_coco.py'),
    teacher_ckpt=teacher_ckpt,
    inherit=('neck', 'bbox_head'),
    distill_losses=dict(
        fgd=dict(type='FGDLoss', in_channels=256, out_channels=256, alpha_fgd=1e-3,
                 beta_fgd=5e-4, gamma_fgd=5e-4, lambda_fgd=5e-6, temperature=0.5)))

# Gradient norm clipped at 35, as in the authors' configs. An orthogonal projector (a
# projector=dict(type='OrthogonalProjector') swap) would take no weight decay.
optim_wrapper = dict(
    clip_grad=dict(max_norm=35, norm_type=2),
    paramwise_cfg=dict(custom_keys={'projector.raw_weight': dict(decay_mult=0.0)}))
# A fixed seed (with RNGStateHook) makes `--resume` bit-exact.
randomness = dict(seed=0)
