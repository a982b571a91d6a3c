# VkD on COCO, DETR-style: DINO Swin-L 5-scale -> DINO R50 4-scale (12e).
# - teacher: mmdet::dino/dino-5scale_swin-l_8xb2-12e_coco.py, weights from mmdet's model zoo
#   (57.2 box AP; `teacher_ckpt` of the pair in configs/_base_/distillers/).
# - student: mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py (ImageNet-pretrained ResNet-50;
#   49.0 box AP in mmdet's zoo).
# - data, 12e schedule (AdamW 1e-4, batch 16, grad clip 0.1) and its paramwise_cfg (backbone
#   lr x 0.1): the student's config, inherited.
# - distillation: VkD on the four strides both necks give (P3-P6: the teacher's P2 has no student
#   level; 256 -> 256 channels, read from the necks); weight 4.0 is the VkD authors' (tuned
#   against DETR-style loss scales).
_base_ = ['../_base_/distillers/dino_swin-l_r50_pair.py']
model = dict(distill_losses=dict(
    vkd=dict(type='VkDLoss', loss_weight=4.0)))
