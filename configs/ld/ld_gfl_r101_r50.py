# LD, the authors' full form, GFL R101 ms-2x -> GFL R50 1x (Zheng et al., CVPR 2022: 40.2 ->
# 42.1 AP on COCO val, published): KL between the teacher's and the student's box-edge
# distributions at T 10 on the student's positives (weight 0.25), classification KD at T 2 on the
# same positives (weight 10), and the same box KL on the valuable localisation region, the priors
# whose DIoU with a GT lies between 0.25 and 1 times its ATSS threshold (weight 0.25).
# Everything but the loss comes from the pair's base (configs/_base_/distillers/).
_base_ = ['../_base_/distillers/gfl_r101_r50_pair.py']
model = dict(distill_losses=dict(
    ld=dict(type='LDLoss', loss_weight=0.25, temperature=10.0, cls_weight=10.0,
            cls_temperature=2.0, vlr_weight=0.25, vlr_alpha=0.25)))
