from .base_distiller import BaseDistiller
from .detection_distiller import DetectionDistiller

__all__ = ['BaseDistiller', 'DetectionDistiller']
