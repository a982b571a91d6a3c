# VkD on ImageNet-1k: DeiT-S student under RegNetY-160. Paper: 82.3 top-1 (82.9 re-run);
# DeiT-S alone 79.8. Same recipe (the authors': AdamW lr 5e-4 at total batch 512, wd 0.05
# without the projector, cosine to 5e-6 with no warm-up, 300 epochs, drop path 0, 3-Augment;
# see the header of deit-tiny_regnety160_in1k.py), teacher and teacher weights.
_base_ = ['./deit-tiny_regnety160_in1k.py']

model = dict(
    student=dict(
        cfg_path='mmpretrain::deit/deit-small-distilled_4xb256_in1k.py',
        backbone=dict(arch='deit-small')),
    feature_losses=dict(vkd=dict(in_channels=384)))
