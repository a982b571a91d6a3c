# Faster R-CNN R101-FPN 2x (teacher, mmdet zoo: 39.8 box AP) -> Faster R-CNN R50-FPN 2x (student,
# mmdet zoo: 38.4 box AP); data, schedule and runtime: the student's. The method configs add
# `distill_losses`.
_base_ = ['mmdet::faster_rcnn/faster-rcnn_r50_fpn_2x_coco.py', '../distill_runtime.py']
# Training ends by exporting the student as a plain mmdet model to <work_dir>/student;
# checkpoints keep the RNG states, so --resume continues the random streams.
custom_hooks = [dict(type='ExportStudentHook'), dict(type='RNGStateHook')]

teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/faster_rcnn/faster_rcnn_r101_fpn_2x_coco/faster_rcnn_r101_fpn_2x_coco_bbox_mAP-0.398_20200504_210455-1d2dac9c.pth'
model = dict(
    _delete_=True,
    type='DetectionDistiller',
    student={{_base_.model}},
    teacher=dict(cfg_path='mmdet::faster_rcnn/faster-rcnn_r101_fpn_2x_coco.py'),
    teacher_ckpt=teacher_ckpt,
    distill_losses=dict())
# Orthogonal projectors never take weight decay (it drags them back to their initialisation);
# every other parameter keeps the student recipe's optimizer rules.
optim_wrapper = dict(constructor='DistillOptimWrapperConstructor')
