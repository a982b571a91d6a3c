# VkD on ImageNet-1k with CNNs: ResNet-18 student under a frozen ResNet-34 teacher (mmpretrain
# zoo, 73.62 top-1). Our application of VkD's classification form to the R34 -> R18 benchmark of
# SRD / KD++ (the VkD paper reports DeiT students only): orthogonal projector 512 -> 512 (a
# rotation) on the pooled student feature, LayerNorm without affine on the pooled teacher
# feature, smooth-L1, plus KL (T = 1) on the logits. ResNet-18 alone: 69.76 (mmpretrain zoo).
#
# Recipe (torchvision / SRD / KD++ ImageNet recipe, mmpretrain's resnet18_8xb32_in1k schedule):
# SGD lr 0.1 momentum 0.9 wd 1e-4 (none on the orthogonal projector: the optimizer constructor
# exempts it alone), 100 epochs, lr x0.1 at 30/60/90,
# total batch 256 (8 GPUs x 32). lr scaling: --auto-scale-lr scales lr to 0.1 * B / 256.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs32.py',
    'mmpretrain::_base_/schedules/imagenet_bs256.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['vkd_mmdet.classification'], allow_failed_imports=False)
custom_hooks = [dict(type='ExportStudentHook'), dict(type='RNGStateHook')]

model = dict(
    type='ClassifierDistiller',
    student=dict(cfg_path='mmpretrain::resnet/resnet18_8xb32_in1k.py'),
    teacher=dict(cfg_path='mmpretrain::resnet/resnet34_8xb32_in1k.py'),
    teacher_ckpt='https://download.openmmlab.com/mmclassification/v0/resnet/'
    'resnet34_8xb32_in1k_20210831-f257d4e6.pth',
    feature_losses=dict(
        vkd=dict(type='VkDClsLoss', in_channels=512, out_channels=512, loss_weight=1.0)),
    logit_losses=dict(kd=dict(type='LogitKDLoss', temperature=1.0, loss_weight=1.0)))

# Orthogonal projectors never take weight decay (the constructor exempts them alone).
optim_wrapper = dict(constructor='DistillOptimWrapperConstructor')
# A fixed seed (with RNGStateHook) makes `--resume` bit-exact.
randomness = dict(seed=0)
