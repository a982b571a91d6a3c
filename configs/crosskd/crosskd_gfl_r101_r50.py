# CrossKD, GFL R101 ms-2x -> GFL R50 1x (Wang et al., CVPR 2024: 40.2 -> 43.7 AP on COCO val,
# published): the student's head towers, cut before the activation of conv 3, standardised and
# re-coloured with the teacher's statistics, run through the rest of the teacher's head; its
# predictions matched to the teacher's: quality-focal KD on the classes (weight 1.0), KL on the
# box distributions weighted by the teacher's top score (weight 4.0).
# Everything but the loss comes from the pair's base (configs/_base_/distillers/).
_base_ = ['../_base_/distillers/gfl_r101_r50_pair.py']
model = dict(distill_losses=dict(
    crosskd=dict(type='CrossKDLoss', tower_conv=3, cls_weight=1.0, box_weight=4.0)))
