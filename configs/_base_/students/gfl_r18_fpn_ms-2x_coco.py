# GFL R18-FPN, multi-scale 2x: mmdet's GFL R50 ms-2x config with an ImageNet-pretrained
# ResNet-18; mmdet's zoo has no GFL R18.
_base_ = ['mmdet::gfl/gfl_r50_fpn_ms-2x_coco.py']
model = dict(
    backbone=dict(
        depth=18, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet18')),
    neck=dict(in_channels=[64, 128, 256, 512]))
