# VkD on COCO, two-stage: Faster R-CNN R101-FPN -> Faster R-CNN R18-FPN.
# - teacher: mmdet::faster_rcnn/faster-rcnn_r101_fpn_2x_coco.py, weights from mmdet's model zoo
#   (39.8 box AP; `teacher_ckpt` of the pair in configs/_base_/distillers/).
# - student: mmdet::faster_rcnn/faster-rcnn_r50_fpn_2x_coco.py with an ImageNet-pretrained ResNet-18
#   (torchvision://resnet18); mmdet's zoo has no Faster R-CNN R18.
# - data, 2x schedule (SGD 0.02, batch 16) and runtime: the student's config, inherited.
# - distillation: VkD on all five FPN levels (P2-P6); weight 4.0 per level, the VkD authors'
#   detection weight: on both CPU proxies' held-out tune split 1-2 lost 0.6-2.1 AP to 4, while 4
#   and 10 differ by less than one seed's noise (docs/vkd_diagnosis.md).
_base_ = ['../_base_/distillers/faster_rcnn_r101_r18_pair.py']
model = dict(distill_losses=dict(
    vkd=dict(type='VkDLoss', in_channels=256, out_channels=256, loss_weight=4.0)))
