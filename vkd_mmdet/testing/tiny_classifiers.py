"""Small, randomly initialised mmpretrain classifiers and batches, for tests on the CPU.

Imports mmpretrain (and, to build the timm teacher, timm): import this module by its path,
``vkd_mmdet.testing.tiny_classifiers``; ``vkd_mmdet.testing`` does not import it. Nothing here
downloads. Building ``tiny_deit`` needs ``vkd_mmdet.classification`` imported (it registers
``ConvStemDeiT``).
"""
from typing import Any, Dict

import torch
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

NUM_CLASSES = 5
#: Height and width of the images :func:`batch` draws.
IMG = 32
TINY_VIT = dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)


def tiny_deit(**backbone: Any) -> dict:
    """A two-layer DeiT on ``IMG`` px images with VkD's convolutional stem (``ConvStemDeiT``)."""
    return dict(
        type='ImageClassifier',
        backbone=dict(type='ConvStemDeiT', arch=TINY_VIT, img_size=IMG, stem_channels=8,
                      **backbone),
        head=dict(type='DeiTClsHead', num_classes=NUM_CLASSES, in_channels=32))


def tiny_resnet(depth: int = 18) -> dict:
    """An mmpretrain ResNet of ``depth`` at 8 base channels, pooled, with a linear head."""
    return dict(
        type='ImageClassifier',
        backbone=dict(type='ResNet', depth=depth, base_channels=8, stem_channels=8,
                      out_indices=(3,)),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=NUM_CLASSES, in_channels=64))


def tiny_timm_teacher() -> dict:
    """timm's smallest RegNet through mmpretrain's ``TimmClassifier``, not pretrained."""
    return dict(type='TimmClassifier', model_name='regnetx_002', num_classes=NUM_CLASSES,
                pretrained=False)


def batch(n: int = 4, size: int = IMG, seed: int = 0) -> Dict[str, list]:
    """``n`` seeded random uint8 images of ``size`` px, labelled ``0, 1, ...`` (mod classes)."""
    g = torch.Generator().manual_seed(seed)
    return dict(
        inputs=[torch.randint(0, 256, (3, size, size), generator=g, dtype=torch.uint8)
                for _ in range(n)],
        data_samples=[DataSample().set_gt_label(i % NUM_CLASSES) for i in range(n)])


def save_random_checkpoint(model_cfg: dict, path: str, timm_keys: bool = False) -> str:
    """Random weights for ``model_cfg`` saved as a plain state dict (a zoo teacher stand-in);
    ``timm_keys``: the bare timm network's keys, as timm / DeiT publish them."""
    model = MODELS.build(model_cfg)
    state_dict = (model.model if timm_keys else model).state_dict()
    torch.save(dict(state_dict=state_dict), path)
    return str(path)
