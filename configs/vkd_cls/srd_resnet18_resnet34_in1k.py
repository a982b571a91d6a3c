# SRD (Miles & Mikolajczyk, AAAI 2024) on ImageNet-1k: ResNet-18 under ResNet-34.
# Paper: 71.87 top-1 (ResNet-18 alone 69.75, ReviewKD 71.61).
# loss = CE + KL(T = 1) + 2.0 * log(sum |BN(W s + b) - BN(t)|^4) on the pooled last-stage
# features (METHODS.md; the authors' torchdistill config applies the same distance to the layer3
# and layer4 maps). The feature-map SRDLoss of the detection setting is reused on (N, C, 1, 1)
# maps (it consumes 'fpn' maps): BatchNorm over a batch of 1x1 maps is BatchNorm over the pooled
# features.
# Its adapter is a free linear map (not an orthogonal projector): ordinary weight decay applies.
# Recipe: as resnet18_resnet34_in1k.py (SGD 0.1, 100 epochs, batch 256, --auto-scale-lr).
_base_ = ['./resnet18_resnet34_in1k.py']

model = dict(
    feature_losses=dict(
        _delete_=True,
        srd=dict(
            type='mmdet.SRDLoss',
            in_channels=512,
            out_channels=512,
            loss_weight=2.0)))
optim_wrapper = dict(paramwise_cfg=dict(_delete_=True))
