from .base_distiller import BaseDistiller
from .detection_distiller import DetectionDistiller

# ClassifierDistiller (mmpretrain) is registered by `vkd_mmdet.classification`.
__all__ = ['BaseDistiller', 'DetectionDistiller']
