# CPU demo MGD on P3-P5: the paper's one-stage setting (alpha 2e-5, a cell dropped with
# probability 0.65) after a 1x1 adapter 32 -> 64. No inherit: the demo teacher is twice as wide
# as the student, so its neck and head cannot be copied. Everything else from the demo pair's
# base. loss_weight (1) multiplies the loss: the weight sweep scales it.
_base_ = ['../_base_/distillers/demo_fcos_r18-w32_r18-w16_pair.py']
model = dict(distill_losses=dict(
    mgd=dict(type='MGDLoss', in_channels=32, out_channels=64, alpha_mgd=2e-5, lambda_mgd=0.65,
             loss_weight=1.0,
             projector=dict(type='LinearAdapter'))))  # 32 -> 64 channels: a free 1x1 map
