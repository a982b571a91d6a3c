"""Helpers for tests and benchmarks (tiny random detectors); not imported by ``vkd_mmdet``."""
from .tiny_detectors import mmdet_model_cfg, save_random_checkpoint, tiny_detector_cfg

__all__ = ['mmdet_model_cfg', 'save_random_checkpoint', 'tiny_detector_cfg']
