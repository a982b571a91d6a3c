"""Tiny models and data for tests, demos and benchmarks (random detectors, a synthetic COCO set);
not imported by ``vkd_mmdet``."""
from .synthetic_coco import CLASSES, coco_summary, draw_image, make_synthetic_coco
from .tiny_detectors import mmdet_model_cfg, save_random_checkpoint, tiny_detector_cfg

__all__ = ['CLASSES', 'coco_summary', 'draw_image', 'make_synthetic_coco', 'mmdet_model_cfg',
           'save_random_checkpoint', 'tiny_detector_cfg']
