# VkD on ImageNet-1k: DeiT-Ti student (conv stem, mean-of-patches distillation token) under a
# frozen RegNetY-160 teacher (timm `regnety_160`, 3024-d pooled feature, 82.6% top-1).
# Paper (CVPR 2024): 78.3 top-1 (79.2 in the authors' single-GPU re-run); DeiT-Ti alone 72.2.
#
# Recipe (the authors' DeiT recipe): AdamW, lr 5e-4 for a total batch of 512 (8 GPUs x 64, or
# 1 GPU x 512), weight decay 0.05 except on the orthogonal projector, norms, biases, cls token
# and position embedding; 5 warm-up epochs then cosine to 1e-5; 300 epochs; label smoothing 0.1,
# Mixup 0.8 / CutMix 1.0, RandAugment, random erasing 0.25 (mmpretrain's DeiT pipeline).
# lr scaling: for another total batch B run tools/train.py with --auto-scale-lr, which scales
# lr linearly to 5e-4 * B / 512 (auto_scale_lr below).
#
# Teacher weights: DeiT's release of timm's RegNetY-160 (its state dict under 'model').
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['vkd_mmdet.classification'], allow_failed_imports=False)
# ConvStemDeiT is ours: no plain-mmpretrain export (no ExportStudentHook).
custom_hooks = [dict(type='RNGStateHook'), dict(type='ProjectorDecayCheckHook')]

student_channels = 192
model = dict(
    type='ClassifierDistiller',
    # mmpretrain's DeiT-Ti-distilled model (DeiTClsHead, label smoothing, Mixup / CutMix, init)
    # with the VkD backbone.
    student=dict(
        cfg_path='mmpretrain::deit/deit-tiny-distilled_4xb256_in1k.py',
        backbone=dict(
            _delete_=True,
            type='ConvStemDeiT',
            arch='deit-tiny',
            img_size=224,
            drop_path_rate=0.1)),
    teacher=dict(
        type='TimmClassifier', model_name='regnety_160', num_classes=1000, pretrained=False),
    teacher_ckpt='https://dl.fbaipublicfiles.com/deit/regnety_160-a5fe301d.pth',
    # loss = CE(cls head) + 1.0 * smooth-L1(P(mean patch token), LN(teacher pooled feature))
    #        + 1.0 * KL(dist head || teacher, T = 1)
    feature_losses=dict(
        vkd=dict(
            type='VkDClsLoss',
            in_channels=student_channels,
            out_channels=3024,
            loss_weight=1.0)),
    logit_losses=dict(kd=dict(type='LogitKDLoss', temperature=1.0, loss_weight=1.0)))

optim_wrapper = dict(
    optimizer=dict(lr=5e-4, weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={
            'projector.raw_weight': dict(decay_mult=0.0),
            '.cls_token': dict(decay_mult=0.0),
            '.pos_embed': dict(decay_mult=0.0),
        }))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, end=5, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=5),
]
train_cfg = dict(max_epochs=300)
auto_scale_lr = dict(base_batch_size=512)
# A fixed seed (with RNGStateHook) makes `--resume` bit-exact.
randomness = dict(seed=0)
