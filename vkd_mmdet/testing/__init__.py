"""Helpers for tests and benchmarks (tiny random detectors); not imported by ``vkd_mmdet``."""
from .tiny_detectors import (
                             MMDET_CONFIG_DIR,
                             mmdet_model_cfg,
                             save_random_checkpoint,
                             tiny_detector_cfg,
)

__all__ = ['MMDET_CONFIG_DIR', 'mmdet_model_cfg', 'save_random_checkpoint', 'tiny_detector_cfg']
