# Mask R-CNN R101-FPN 2x (teacher, mmdet zoo: 40.8 box / 36.6 mask AP) -> Mask R-CNN R50-FPN 2x
# (student, 39.2 / 35.4); data, schedule and runtime: the student's.
_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50_fpn_2x_coco.py', '../distill_runtime.py']
# Training ends by exporting the student as a plain mmdet model to <work_dir>/student;
# checkpoints keep the RNG states, so --resume continues the random streams.
custom_hooks = [dict(type='ExportStudentHook'), dict(type='RNGStateHook')]

teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/mask_rcnn/mask_rcnn_r101_fpn_2x_coco/mask_rcnn_r101_fpn_2x_coco_bbox_mAP-0.408__segm_mAP-0.366_20200505_071027-14b391c7.pth'
model = dict(
    _delete_=True,
    type='DetectionDistiller',
    student={{_base_.model}},
    teacher=dict(cfg_path='mmdet::mask_rcnn/mask-rcnn_r101_fpn_2x_coco.py'),
    teacher_ckpt=teacher_ckpt,
    distill_losses=dict())
# Orthogonal projectors never take weight decay (it drags them back to their initialisation);
# every other parameter keeps the student recipe's optimizer rules.
optim_wrapper = dict(constructor='DistillOptimWrapperConstructor')
