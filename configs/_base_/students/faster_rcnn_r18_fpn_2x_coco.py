# Faster R-CNN R18-FPN, 2x: mmdet's R50-FPN 2x config (data, SGD 0.02 batch 16, runtime) with an
# ImageNet-pretrained ResNet-18 (torchvision://resnet18); mmdet's zoo has no Faster R-CNN R18.
_base_ = ['mmdet::faster_rcnn/faster-rcnn_r50_fpn_2x_coco.py']
model = dict(
    backbone=dict(
        depth=18, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet18')),
    neck=dict(in_channels=[64, 128, 256, 512]))
