# VkD on COCO, real-time one-stage: RTMDet-l -> RTMDet-tiny (300e recipe, EMA).
# - teacher: mmdet::rtmdet/rtmdet_l_8xb32-300e_coco.py, weights from mmdet's model zoo
#   (51.3 box AP; loaded from `teacher_ckpt` below).
# - student: mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py (ImageNet-pretrained CSPNeXt-tiny;
#   40.9 box AP in mmdet's zoo).
# - data, 300e schedule (AdamW 0.004, batch 256, Mosaic/MixUp switched off for the last 20 epochs),
#   its paramwise_cfg (no decay on norms and biases) and EMA: the student's config, inherited. The
#   exported student holds the EMA weights (what mmdet evaluates).
# - distillation: VkD on the three strides both necks give (P3-P5, 96 -> 256 channels, widths
#   read from the necks); weight 4.0, the VkD authors' detection weight: on the CPU proxies'
#   tune split 1-2 lost 0.6-2.1 AP to 4 (docs/vkd_diagnosis.md).
_base_ = ['mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py']
custom_imports = dict(imports=['vkd_mmdet'], allow_failed_imports=False)
# The student recipe's EMAHook and PipelineSwitchHook (switch_epoch = 300 - 20), then ours:
# distillation runs through the 280 mosaic epochs and stops with them (weight factor 0 from
# epoch index 280, when the pipeline switches); training ends by exporting the student as a plain
# mmdet model to <work_dir>/student; checkpoints keep the RNG states, so --resume continues the
# random streams; an optimizer that decays the orthogonal projectors is refused before the first
# iteration, on every rank.
custom_hooks = [
    dict(type='EMAHook', ema_type='ExpMomentumEMA', momentum=0.0002, update_buffers=True,
         priority=49),
    dict(type='PipelineSwitchHook', switch_epoch=280,
         switch_pipeline={{_base_.train_pipeline_stage2}}),
    dict(type='DistillLossScheduleHook',
         schedules={'*': dict(policy='step', end=280, by_epoch=True)}),
    dict(type='ExportStudentHook'),
    dict(type='RNGStateHook'),
    dict(type='ProjectorDecayCheckHook'),
]

teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v3.0/rtmdet/rtmdet_l_8xb32-300e_coco/rtmdet_l_8xb32-300e_coco_20220719_112030-5a0be7c4.pth'
model = dict(
    _delete_=True,
    type='DetectionDistiller',
    student=dict(cfg_path='mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py'),
    teacher=dict(cfg_path='mmdet::rtmdet/rtmdet_l_8xb32-300e_coco.py'),
    teacher_ckpt=teacher_ckpt,
    distill_losses=dict(vkd=dict(type='VkDLoss', loss_weight=4.0)))

# Orthogonal projectors never take weight decay (it drags them back to their initialisation).
# The key matches OrthogonalProjector's `raw_weight` alone: the student keeps its own rules.
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'projector.raw_weight': dict(decay_mult=0.0)}))
# A fixed seed (with RNGStateHook) makes `--resume` bit-exact: the sampler and data-worker seeds
# are built before the checkpoint is read. Change it per run if you average over seeds.
randomness = dict(seed=0)
