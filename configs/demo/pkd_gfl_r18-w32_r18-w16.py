# CPU demo PKD on the GFL pair: the FCOS row's loss (MMRazor's PKDLoss, weight 6, the low end of
# the paper's 6-10) after a free 1x1 map 32 -> 64 on P3-P5. CrossKD's paper stacks PKD on GFL.
_base_ = ['../_base_/distillers/demo_gfl_r18-w32_r18-w16_pair.py']
model = dict(distill_losses=dict(
    pkd=dict(type='PKDLoss', in_channels=32, out_channels=64, loss_weight=6.0,
             projector=dict(type='LinearAdapter'))))
