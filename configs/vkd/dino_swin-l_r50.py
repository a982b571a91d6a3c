# VkD on COCO, DETR-style: DINO Swin-L 5-scale -> DINO R50 4-scale (12e).
# - teacher: mmdet::dino/dino-5scale_swin-l_8xb2-12e_coco.py, weights from mmdet's model zoo
#   (57.2 box AP; loaded from `teacher_ckpt` below).
# - student: mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py (ImageNet-pretrained ResNet-50;
#   49.0 box AP in mmdet's zoo).
# - data, 12e schedule (AdamW 1e-4, batch 16, grad clip 0.1) and its paramwise_cfg (backbone
#   lr x 0.1): the student's config, inherited.
# - distillation: VkD on the four strides both necks give (P3-P6: the teacher's P2 has no student
#   level; 256 -> 256 channels, read from the necks); weight 4.0 is the VkD authors' (tuned
#   against DETR-style loss scales).
_base_ = ['mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py']
custom_imports = dict(imports=['vkd_mmdet'], allow_failed_imports=False)
# Training ends by exporting the student as a plain mmdet model to <work_dir>/student;
# checkpoints keep the RNG states, so --resume continues the random streams; an optimizer that
# decays the orthogonal projectors is refused before the first iteration, on every rank.
custom_hooks = [dict(type='ExportStudentHook'), dict(type='RNGStateHook'),
                dict(type='ProjectorDecayCheckHook')]

teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v3.0/dino/dino-5scale_swin-l_8xb2-12e_coco/dino-5scale_swin-l_8xb2-12e_coco_20230228_072924-a654145f.pth'
model = dict(
    _delete_=True,
    type='DetectionDistiller',
    student=dict(cfg_path='mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py'),
    teacher=dict(cfg_path='mmdet::dino/dino-5scale_swin-l_8xb2-12e_coco.py'),
    teacher_ckpt=teacher_ckpt,
    distill_losses=dict(vkd=dict(type='VkDLoss', loss_weight=4.0)))

# Orthogonal projectors never take weight decay (it drags them back to their initialisation).
# The key matches OrthogonalProjector's `raw_weight` alone; the student recipe's backbone rule is
# kept.
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'projector.raw_weight': dict(decay_mult=0.0)}))
# A fixed seed (with RNGStateHook) makes `--resume` bit-exact: the sampler and data-worker seeds
# are built before the checkpoint is read. Change it per run if you average over seeds.
randomness = dict(seed=0)
