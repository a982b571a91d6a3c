# CPU demo SRD (linear adapter with bias 32 -> 64, affine-free BN eps 1e-4, w * log-sum
# |diff|^4, pixels as samples: our adaptation) on P3-P5; everything else from the VkD demo config.
# Weight 2.0 is the paper's ResNet recipe (ImageNet).
_base_ = ['../_base_/distillers/demo_fcos_r18-w32_r18-w16_pair.py']
model = dict(distill_losses=dict(
    srd=dict(type='SRDLoss', in_channels=32, out_channels=64, loss_weight=2.0, eps=1e-4)))
