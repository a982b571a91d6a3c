# ATSS R101-FPN 1x (teacher, mmdet zoo: 41.5 box AP) -> ATSS R50-FPN 1x (student, mmdet zoo:
# 39.4); data, 1x schedule and runtime: the student's.
# The method configs add `distill_losses`.
_base_ = ['mmdet::atss/atss_r50_fpn_1x_coco.py', '../distill_runtime.py']
# Training ends by exporting the student as a plain mmdet model to <work_dir>/student;
# checkpoints keep the RNG states, so --resume continues the random streams.
custom_hooks = [dict(type='ExportStudentHook'), dict(type='RNGStateHook')]

teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/atss/atss_r101_fpn_1x_coco/atss_r101_fpn_1x_20200825-dfcadd6f.pth'
model = dict(
    _delete_=True,
    type='DetectionDistiller',
    student={{_base_.model}},
    teacher=dict(cfg_path='mmdet::atss/atss_r101_fpn_1x_coco.py'),
    teacher_ckpt=teacher_ckpt,
    distill_losses=dict())
# Distillation modules never take weight decay where it would undo them; every other parameter
# keeps the student recipe's optimizer rules.
optim_wrapper = dict(constructor='DistillOptimWrapperConstructor')
