# CPU demo RTK (AFD attention over all teacher/student level pairs of P3-P5, representative links);
# everything else from the VkD demo config. Weight 200 is AFD's beta; qk_dim 32 (AFD: 128, sized
# down to the demo's 32 -> 64 widths) and num_keys=2 are ours.
_base_ = ['../_base_/distillers/demo_fcos_r18-w32_r18-w16_pair.py']
model = dict(distill_losses=dict(
    rtk=dict(type='RTKLoss', in_channels=32, out_channels=64, num_levels=3, qk_dim=32,
             num_keys=2, loss_weight=200.0)))
