# VkD on COCO, instance segmentation: Mask R-CNN R101-FPN -> Mask R-CNN R50-FPN (2x).
# - teacher: mmdet::mask_rcnn/mask-rcnn_r101_fpn_2x_coco.py, weights from mmdet's model zoo
#   (40.8 box AP, 36.6 mask AP; `teacher_ckpt` of the pair in configs/_base_/distillers/).
# - student: mmdet::mask_rcnn/mask-rcnn_r50_fpn_2x_coco.py (ImageNet-pretrained ResNet-50;
#   39.2 box AP, 35.4 mask AP in mmdet's zoo). It keeps its mask head: the exported student is
#   a plain mmdet Mask R-CNN that predicts masks.
# - data, 2x schedule (SGD 0.02, batch 16) and runtime: the student's config, inherited.
# - distillation: VkD on all five FPN levels (P2-P6, 256 -> 256 channels, read from the necks);
#   weight 4.0, the VkD authors' detection weight: on the CPU proxies' tune split
#   1-2 lost 0.6-2.1 AP to 4 (docs/vkd_diagnosis.md).
_base_ = ['../_base_/distillers/mask_rcnn_r101_r50_pair.py']
model = dict(distill_losses=dict(
    vkd=dict(type='VkDLoss', loss_weight=4.0)))
