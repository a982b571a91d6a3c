"""Data sets: a seeded synthetic COCO-format detection set for CPU demos and tests."""
from .synthetic_coco import CLASSES, coco_summary, draw_image, make_synthetic_coco

__all__ = ['CLASSES', 'coco_summary', 'draw_image', 'make_synthetic_coco']
