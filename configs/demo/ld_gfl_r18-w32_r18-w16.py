# CPU demo LD on the GFL pair, the authors' full form with their weights (configs/ld/): box-edge
# KL at T 10 on the student's positives (0.25), classification KD at T 2 (10), box KL on the
# valuable localisation region (0.25, DIoU between 0.25 and 1 x the ATSS threshold).
_base_ = ['../_base_/distillers/demo_gfl_r18-w32_r18-w16_pair.py']
model = dict(distill_losses=dict(
    ld=dict(type='LDLoss', loss_weight=0.25, temperature=10.0, cls_weight=10.0,
            cls_temperature=2.0, vlr_weight=0.25, vlr_alpha=0.25)))
