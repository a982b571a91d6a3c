# CPU demo PKD on P3-P5: the authors' loss (MMRazor's PKDLoss: per-channel standardisation over
# the batch, unbiased std + 1e-6, MSE / 2; per_sample=True is our variant), after a 1x1 adapter
# 32 -> 64; everything else from the VkD demo config. Weight 6 is the low end of the paper's 6-10.
_base_ = ['../_base_/distillers/demo_fcos_r18-w32_r18-w16_pair.py']
model = dict(distill_losses=dict(
    pkd=dict(type='PKDLoss', in_channels=32, out_channels=64, loss_weight=6.0,
             projector=dict(type='LinearAdapter'))))  # 32 -> 64 channels: a free 1x1 map
