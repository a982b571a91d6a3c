"""The ImageNet side of vkd_mmdet, on mmpretrain (``pip install vkd_mmdet[cls]``).

``import vkd_mmdet`` registers the detection modules only and never imports mmpretrain. An
mmpretrain config registers these with
``custom_imports = dict(imports=['vkd_mmdet.classification'], allow_failed_imports=False)``:
``ClassifierDistiller``, ``ConvStemDeiT``, ``VkDClsLoss`` and ``LogitKDLoss`` (the same class as
mmdet's, registered in mmpretrain's registry too) under ``default_scope='mmpretrain'``.
"""
from mmpretrain.registry import MODELS

from ..models.backbones.conv_stem_deit import ConvStem, ConvStemDeiT
from ..models.distillers.classifier_distiller import ClassifierDistiller
from ..models.losses.logit_kd_loss import LogitKDLoss
from ..models.losses.vkd_cls_loss import VkDClsLoss

MODELS.register_module(module=LogitKDLoss)

__all__ = ['ClassifierDistiller', 'ConvStem', 'ConvStemDeiT', 'LogitKDLoss', 'VkDClsLoss']
