# GFL R101-FPN ms-2x (teacher, mmdet zoo: 44.7 box AP) -> GFL R18-FPN ms-2x (student); data,
# schedule and runtime: the student's. The method configs add `distill_losses`.
_base_ = ['../students/gfl_r18_fpn_ms-2x_coco.py', '../distill_runtime.py']
# Training ends by exporting the student as a plain mmdet model to <work_dir>/student;
# checkpoints keep the RNG states, so --resume continues the random streams.
custom_hooks = [dict(type='ExportStudentHook'), dict(type='RNGStateHook')]

teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/gfl/gfl_r101_fpn_mstrain_2x_coco/gfl_r101_fpn_mstrain_2x_coco_20200629_200126-dd12f847.pth'
model = dict(
    _delete_=True,
    type='DetectionDistiller',
    student={{_base_.model}},
    teacher=dict(cfg_path='mmdet::gfl/gfl_r101_fpn_ms-2x_coco.py'),
    teacher_ckpt=teacher_ckpt,
    distill_losses=dict())
# Orthogonal projectors never take weight decay (it drags them back to their initialisation);
# every other parameter keeps the student recipe's optimizer rules.
optim_wrapper = dict(constructor='DistillOptimWrapperConstructor')
