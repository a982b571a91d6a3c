# KD++ (Wang et al., "Improving Knowledge Distillation via Regularizing Feature Norm and
# Direction", ECCV 2024) on ImageNet-1k: ResNet-18 under ResNet-34.
# Paper: 71.98 top-1 (KD 70.66, ResNet-18 alone 69.76, their torchvision R34 teacher 73.31; the
# mmpretrain R34 teacher here: 73.62).
# loss = CE + 2.5 * min(1, epoch / 5) * KL(T = 1) + 1.0 * ND on the penultimate pooled features
# (512 -> 512: no adapter), with the teacher's class-mean features as the ND directions.
# Weights, T and the 5-epoch linear KD warm-up are the authors' (ImageNet/train.sh and
# train_kd.py of their code release: "resnet34 - resnet18 1.0*cls + 2.5*kd + 1.0*nd"); none
# is ours.
#
# Class centres first (teacher's pooled features over the training set, train pipeline, per
# class), written to the `class_centers` path below:
#   python tools/compute_class_centers.py configs/vkd_cls/kdpp_resnet18_resnet34_in1k.py
# ND needs hard labels: no Mixup / CutMix (the base config has none).
#
# Recipe: the authors' SGD (momentum 0.9, Nesterov, wd 1e-4 on everything), 100 epochs, lr x0.1
# at 30/60/90, lr 0.2 at batch 512 = the base config's 0.1 at batch 256 (8 GPUs x 32);
# --auto-scale-lr scales lr to 0.1 * B / 256.
_base_ = ['./resnet18_resnet34_in1k.py']

model = dict(
    feature_losses=dict(
        _delete_=True,
        nd=dict(
            type='mmdet.NDLoss',
            num_classes=1000,
            background=False,
            in_channels=512,
            out_channels=512,
            class_centers='work_dirs/class_centers/resnet34_in1k.pth',
            loss_weight=1.0)),
    logit_losses=dict(kd=dict(loss_weight=2.5, warmup_epochs=5)))
optim_wrapper = dict(optimizer=dict(nesterov=True), paramwise_cfg=dict(_delete_=True))
