# SRD (linear adapter with bias, affine-free BN eps 1e-4, w * log-sum |diff|^4) on all five FPN
# levels with pixels as samples (our adaptation), faster_rcnn R101 -> R18.
# Weight 2.0 is the paper's ResNet recipe (ImageNet); its use on FPN features is ours.
#
# Everything but the loss comes from the pair's base (configs/_base_/distillers/).
_base_ = ['../_base_/distillers/faster_rcnn_r101_r18_pair.py']
model = dict(distill_losses=dict(
    srd=dict(type='SRDLoss', in_channels=256, out_channels=256, loss_weight=2.0, eps=1e-4)))
