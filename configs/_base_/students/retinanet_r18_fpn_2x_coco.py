# RetinaNet R18-FPN, 2x: mmdet's RetinaNet R18 config (31.7 box AP at 1x in mmdet's zoo; SGD
# 0.01, batch 16) on the 2x schedule of mmdet's retinanet_r50_fpn_2x_coco.py.
_base_ = ['mmdet::retinanet/retinanet_r18_fpn_1x_coco.py']
train_cfg = dict(max_epochs=24)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=24, by_epoch=True, milestones=[16, 22], gamma=0.1)
]
