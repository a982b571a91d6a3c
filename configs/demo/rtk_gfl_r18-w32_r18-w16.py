# CPU demo RTK on the GFL pair: the FCOS row's loss (AFD attention over the level pairs of P3-P5,
# qk_dim 32 and 2 keys ours, weight 200 AFD's beta).
_base_ = ['../_base_/distillers/demo_gfl_r18-w32_r18-w16_pair.py']
model = dict(distill_losses=dict(
    rtk=dict(type='RTKLoss', in_channels=32, out_channels=64, num_levels=3, qk_dim=32,
             num_keys=2, loss_weight=200.0)))
