from .base_distiller import BaseDistiller
from .classifier_distiller import ClassifierDistiller
from .detection_distiller import DetectionDistiller

__all__ = ['BaseDistiller', 'ClassifierDistiller', 'DetectionDistiller']
