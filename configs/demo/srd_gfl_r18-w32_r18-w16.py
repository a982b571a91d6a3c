# CPU demo SRD on the GFL pair: the FCOS row's loss (linear adapter with bias 32 -> 64, affine-free
# BN eps 1e-4, pixels as samples; weight 2.0, the paper's ImageNet recipe) on P3-P5.
_base_ = ['../_base_/distillers/demo_gfl_r18-w32_r18-w16_pair.py']
model = dict(distill_losses=dict(
    srd=dict(type='SRDLoss', in_channels=32, out_channels=64, loss_weight=2.0, eps=1e-4)))
