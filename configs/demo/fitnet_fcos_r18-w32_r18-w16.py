# CPU demo FitNet (1x1 conv adapter 32 -> 64 + MSE) on P3-P5; everything else from the VkD demo
# config. Weight 1.0 is ours (FitNet publishes no detection weight).
_base_ = ['../_base_/distillers/demo_fcos_r18-w32_r18-w16_pair.py']
model = dict(distill_losses=dict(
    fitnet=dict(type='FitNetLoss', in_channels=32, out_channels=64, loss_weight=1.0)))
