# VkD on COCO, real-time one-stage: RTMDet-l -> RTMDet-tiny (300e recipe, EMA).
# - teacher: mmdet::rtmdet/rtmdet_l_8xb32-300e_coco.py, weights from mmdet's model zoo
#   (51.3 box AP; `teacher_ckpt` of the pair in configs/_base_/distillers/).
# - student: mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py (ImageNet-pretrained CSPNeXt-tiny;
#   40.9 box AP in mmdet's zoo).
# - data, 300e schedule (AdamW 0.004, batch 256, Mosaic/MixUp switched off for the last 20 epochs),
#   its paramwise_cfg (no decay on norms and biases) and EMA: the student's config, inherited. The
#   exported student holds the EMA weights (what mmdet evaluates).
# - distillation: VkD on the three strides both necks give (P3-P5, 96 -> 256 channels, widths
#   read from the necks); weight 4.0, the VkD authors' detection weight: on the CPU proxies'
#   tune split 1-2 lost 0.6-2.1 AP to 4 (docs/vkd_diagnosis.md).
_base_ = ['../_base_/distillers/rtmdet_l_tiny_pair.py']
model = dict(distill_losses=dict(
    vkd=dict(type='VkDLoss', loss_weight=4.0)))
