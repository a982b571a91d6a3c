# VkD on COCO, instance segmentation: Mask R-CNN R101-FPN -> Mask R-CNN R50-FPN (2x).
# - teacher: mmdet::mask_rcnn/mask-rcnn_r101_fpn_2x_coco.py, weights from mmdet's model zoo
#   (40.8 box AP, 36.6 mask AP; loaded from `teacher_ckpt` below).
# - student: mmdet::mask_rcnn/mask-rcnn_r50_fpn_2x_coco.py (ImageNet-pretrained ResNet-50;
#   39.2 box AP, 35.4 mask AP in mmdet's zoo). It keeps its mask head: the exported student is
#   a plain mmdet Mask R-CNN that predicts masks.
# - data, 2x schedule (SGD 0.02, batch 16) and runtime: the student's config, inherited.
# - distillation: VkD on all five FPN levels (P2-P6, 256 -> 256 channels, read from the necks);
#   weight 4.0, the VkD authors' detection weight: on the CPU proxies' tune split
#   1-2 lost 0.6-2.1 AP to 4 (docs/vkd_diagnosis.md).
_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50_fpn_2x_coco.py']
custom_imports = dict(imports=['vkd_mmdet'], allow_failed_imports=False)
# Training ends by exporting the student as a plain mmdet model to <work_dir>/student;
# checkpoints keep the RNG states, so --resume continues the random streams; an optimizer that
# decays the orthogonal projectors is refused before the first iteration, on every rank.
custom_hooks = [dict(type='ExportStudentHook'), dict(type='RNGStateHook'),
                dict(type='ProjectorDecayCheckHook')]

teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/mask_rcnn/mask_rcnn_r101_fpn_2x_coco/mask_rcnn_r101_fpn_2x_coco_bbox_mAP-0.408__segm_mAP-0.366_20200505_071027-14b391c7.pth'
model = dict(
    _delete_=True,
    type='DetectionDistiller',
    student=dict(cfg_path='mmdet::mask_rcnn/mask-rcnn_r50_fpn_2x_coco.py'),
    teacher=dict(cfg_path='mmdet::mask_rcnn/mask-rcnn_r101_fpn_2x_coco.py'),
    teacher_ckpt=teacher_ckpt,
    distill_losses=dict(vkd=dict(type='VkDLoss', loss_weight=4.0)))

# Orthogonal projectors never take weight decay (it drags them back to their initialisation).
# The key matches OrthogonalProjector's `raw_weight` alone: the student keeps its own rules.
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'projector.raw_weight': dict(decay_mult=0.0)}))
# A fixed seed (with RNGStateHook) makes `--resume` bit-exact: the sampler and data-worker seeds
# are built before the checkpoint is read. Change it per run if you average over seeds.
randomness = dict(seed=0)
