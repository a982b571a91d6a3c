# RTK (AFD attention over all teacher/student FPN level pairs, representative links) on all five
# FPN levels, faster_rcnn R101 -> R18. Weight 200 is AFD's beta and qk_dim 128 AFD's width;
# num_keys=2 (the selection rule) is ours.
# Everything but the loss comes from the pair's base (configs/_base_/distillers/).
_base_ = ['../_base_/distillers/faster_rcnn_r101_r18_pair.py']
model = dict(distill_losses=dict(
    rtk=dict(type='RTKLoss', in_channels=256, out_channels=256, num_levels=5, qk_dim=128,
             num_keys=2, loss_weight=200.0)))
