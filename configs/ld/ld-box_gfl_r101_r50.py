# LD on the box distributions alone, GFL R101 ms-2x -> GFL R50 1x: mmdet's built-in LD
# (configs/ld of mmdet: LDHead, KL at T 10 on the student's positives, weight 0.25; 40.1 -> 41.0
# AP on COCO val, published by mmdet), here as a loss that stacks with the others.
_base_ = ['./ld_gfl_r101_r50.py']
model = dict(distill_losses=dict(ld=dict(cls_weight=0.0, vlr_weight=0.0)))
