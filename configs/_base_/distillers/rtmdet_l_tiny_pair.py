# RTMDet-l (teacher, mmdet zoo: 51.3 box AP) -> RTMDet-tiny (student, 40.9), 300 epochs; data,
# schedule, runtime and the student's recipe (EMA, pipeline switch at epoch 280): the student's.
_base_ = ['mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py', '../distill_runtime.py']
# Training ends by exporting the student as a plain mmdet model to <work_dir>/student;
# checkpoints keep the RNG states, so --resume continues the random streams.
# The student recipe's hooks (its EMA weights are what mmdet evaluates and what is exported).
custom_hooks = [
    dict(type='EMAHook', ema_type='ExpMomentumEMA', momentum=0.0002, update_buffers=True,
         priority=49),
    dict(type='PipelineSwitchHook', switch_epoch=280,
         switch_pipeline={{_base_.train_pipeline_stage2}}),
    dict(type='ExportStudentHook'),
    dict(type='RNGStateHook'),
]
teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v3.0/rtmdet/rtmdet_l_8xb32-300e_coco/rtmdet_l_8xb32-300e_coco_20220719_112030-5a0be7c4.pth'
model = dict(
    _delete_=True,
    type='DetectionDistiller',
    student={{_base_.model}},
    teacher=dict(cfg_path='mmdet::rtmdet/rtmdet_l_8xb32-300e_coco.py'),
    teacher_ckpt=teacher_ckpt,
    distill_losses=dict())
# Orthogonal projectors never take weight decay (it drags them back to their initialisation);
# every other parameter keeps the student recipe's optimizer rules.
optim_wrapper = dict(constructor='DistillOptimWrapperConstructor')
