"""Tiny classification models and batches for the CPU (no downloads)."""
import torch
from mmpretrain.structures import DataSample

NUM_CLASSES = 5
IMG = 32
TINY_VIT = dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)


def tiny_deit(**backbone):
    return dict(
        type='ImageClassifier',
        backbone=dict(type='ConvStemDeiT', arch=TINY_VIT, img_size=IMG, stem_channels=8,
                      **backbone),
        head=dict(type='DeiTClsHead', num_classes=NUM_CLASSES, in_channels=32))


def tiny_resnet(depth=18):
    return dict(
        type='ImageClassifier',
        backbone=dict(type='ResNet', depth=depth, base_channels=8, stem_channels=8,
                      out_indices=(3,)),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=NUM_CLASSES, in_channels=64))


def tiny_timm_teacher():
    return dict(type='TimmClassifier', model_name='regnetx_002', num_classes=NUM_CLASSES,
                pretrained=False)


def batch(n=4, size=IMG, seed=0):
    g = torch.Generator().manual_seed(seed)
    return dict(
        inputs=[torch.randint(0, 256, (3, size, size), generator=g, dtype=torch.uint8)
                for _ in range(n)],
        data_samples=[DataSample().set_gt_label(i % NUM_CLASSES) for i in range(n)])


def save_random_checkpoint(model_cfg, path, timm_keys=False):
    """Random weights for ``model_cfg`` saved as a plain state dict (a zoo teacher stand-in);
    ``timm_keys``: the bare timm network's keys, as timm / DeiT publish them."""
    from mmpretrain.registry import MODELS
    model = MODELS.build(model_cfg)
    state_dict = (model.model if timm_keys else model).state_dict()
    torch.save(dict(state_dict=state_dict), path)
    return str(path)
