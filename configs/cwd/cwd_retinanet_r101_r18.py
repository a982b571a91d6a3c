# CWD (channel-wise spatial-softmax KL) on all five FPN levels, retinanet R101 -> R18.
# tau 1 and weight 10 are MMRazor's published CWD setting (GFL-R50 40.2 -> 41.9 AP); their use on
# this detector is ours.
# Everything but the loss comes from the pair's base (configs/_base_/distillers/).
_base_ = ['../_base_/distillers/retinanet_r101_r18_pair.py']
model = dict(distill_losses=dict(
    cwd=dict(type='CWDLoss', in_channels=256, out_channels=256, tau=1.0, loss_weight=10.0)))
