# RetinaNet R101-FPN 2x (teacher, mmdet zoo: 38.9 box AP) -> RetinaNet R50-FPN 2x (student,
# mmdet zoo: 37.4 box AP); data, schedule and runtime: the student's. The method configs add
# `distill_losses`.
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_2x_coco.py', '../distill_runtime.py']
# Training ends by exporting the student as a plain mmdet model to <work_dir>/student;
# checkpoints keep the RNG states, so --resume continues the random streams.
custom_hooks = [dict(type='ExportStudentHook'), dict(type='RNGStateHook')]

teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/retinanet/retinanet_r101_fpn_2x_coco/retinanet_r101_fpn_2x_coco_20200131-5560aee8.pth'
model = dict(
    _delete_=True,
    type='DetectionDistiller',
    student={{_base_.model}},
    teacher=dict(cfg_path='mmdet::retinanet/retinanet_r101_fpn_2x_coco.py'),
    teacher_ckpt=teacher_ckpt,
    distill_losses=dict())
# Orthogonal projectors never take weight decay (it drags them back to their initialisation);
# every other parameter keeps the student recipe's optimizer rules.
optim_wrapper = dict(constructor='DistillOptimWrapperConstructor')
