# VkD on COCO, one-stage: GFL R101-FPN -> GFL R18-FPN (multi-scale 2x).
# - teacher: mmdet::gfl/gfl_r101_fpn_ms-2x_coco.py, weights from mmdet's model zoo
#   (44.7 box AP; `teacher_ckpt` of the pair in configs/_base_/distillers/).
# - student: mmdet::gfl/gfl_r50_fpn_ms-2x_coco.py with an ImageNet-pretrained ResNet-18
#   (torchvision://resnet18); mmdet's zoo has no GFL R18.
# - data, multi-scale 2x schedule and runtime: the student's config, inherited.
# - distillation: VkD on all five FPN levels (P3-P7); weight 4.0 per level, the VkD authors'
#   detection weight: on both CPU proxies' held-out tune split 1-2 lost 0.6-2.1 AP to 4, while 4
#   and 10 differ by less than one seed's noise (docs/vkd_diagnosis.md).
_base_ = ['../_base_/distillers/gfl_r101_r18_pair.py']
model = dict(distill_losses=dict(
    vkd=dict(type='VkDLoss', in_channels=256, out_channels=256, loss_weight=4.0)))
