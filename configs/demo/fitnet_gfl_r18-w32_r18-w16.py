# CPU demo FitNet on the GFL pair: the FCOS row's loss (1x1 conv adapter 32 -> 64 + MSE, weight 1.0,
# ours: FitNet publishes no detection weight) on P3-P5.
_base_ = ['../_base_/distillers/demo_gfl_r18-w32_r18-w16_pair.py']
model = dict(distill_losses=dict(
    fitnet=dict(type='FitNetLoss', in_channels=32, out_channels=64, loss_weight=1.0)))
