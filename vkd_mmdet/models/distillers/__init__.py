from .base_distiller import BaseDistiller
from .classifier_distiller import ClassifierDistiller, export_classifier_student
from .detection_distiller import DetectionDistiller

__all__ = ['BaseDistiller', 'ClassifierDistiller', 'DetectionDistiller',
           'export_classifier_student']
