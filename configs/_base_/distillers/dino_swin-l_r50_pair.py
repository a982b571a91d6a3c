# DINO Swin-L 5-scale 12e (teacher, mmdet zoo: 57.2 box AP) -> DINO R50 4-scale 12e (student,
# 49.0); data, schedule, runtime and the student's paramwise_cfg: the student's.
_base_ = ['mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py', '../distill_runtime.py']
# Training ends by exporting the student as a plain mmdet model to <work_dir>/student;
# checkpoints keep the RNG states, so --resume continues the random streams.
custom_hooks = [dict(type='ExportStudentHook'), dict(type='RNGStateHook')]

teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v3.0/dino/dino-5scale_swin-l_8xb2-12e_coco/dino-5scale_swin-l_8xb2-12e_coco_20230228_072924-a654145f.pth'
model = dict(
    _delete_=True,
    type='DetectionDistiller',
    student={{_base_.model}},
    teacher=dict(cfg_path='mmdet::dino/dino-5scale_swin-l_8xb2-12e_coco.py'),
    teacher_ckpt=teacher_ckpt,
    distill_losses=dict())
# Orthogonal projectors never take weight decay (it drags them back to their initialisation);
# every other parameter keeps the student recipe's optimizer rules.
optim_wrapper = dict(constructor='DistillOptimWrapperConstructor')
