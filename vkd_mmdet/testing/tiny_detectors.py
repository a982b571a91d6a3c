"""Small, randomly initialised versions of mmdet's packaged detectors, for tests and benchmarks.

Nothing here downloads: pretrained ``init_cfg`` is removed and checkpoints are written locally.
"""
import copy
from typing import Any, Optional

import torch
from mmdet.registry import MODELS
from mmengine.config import ConfigDict

from ..utils.model_cfg import load_model_cfg

# Keys of head configs that carry the FPN width.
_WIDTH_KEYS = ('in_channels', 'feat_channels', 'out_channels')


def mmdet_model_cfg(config: str) -> ConfigDict:
    """The ``model`` of an mmdet packaged config.

    ``config`` is relative to mmdet's config folder, e.g.
    ``'faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'``; a ``mmdet::`` prefix is accepted.
    """
    return load_model_cfg(config if '::' in config else f'mmdet::{config}')


def tiny_detector_cfg(config: str,
                      num_classes: int = 3,
                      base_channels: int = 16,
                      neck_channels: int = 32,
                      depth: int = 18) -> ConfigDict:
    """``mmdet_model_cfg(config)`` shrunk for the CPU: a ResNet-``depth`` with ``base_channels``,
    an FPN of ``neck_channels``, heads of that width with one stacked conv, no pretrained init."""
    cfg = mmdet_model_cfg(config)
    expansion = 1 if depth in (18, 34) else 4
    cfg.backbone.update(depth=depth, base_channels=base_channels, init_cfg=None)
    cfg.backbone.pop('dcn', None)
    cfg.backbone.pop('stage_with_dcn', None)
    start = cfg.neck.get('start_level', 0)
    cfg.neck.in_channels = [base_channels * expansion * 2**i for i in range(4)]
    cfg.neck.start_level = start
    cfg.neck.out_channels = neck_channels
    for head_key in ('rpn_head', 'bbox_head', 'roi_head'):
        if head_key in cfg:
            _shrink_head(cfg[head_key], neck_channels, num_classes)
    return cfg


def _shrink_head(cfg: Any, width: int, num_classes: int) -> None:
    if isinstance(cfg, dict):
        for key, value in cfg.items():
            if key in _WIDTH_KEYS and isinstance(value, int):
                cfg[key] = width
            elif key == 'fc_out_channels':
                cfg[key] = 2 * width
            elif key == 'stacked_convs':
                cfg[key] = 1
            elif key == 'num_classes':
                cfg[key] = num_classes
            else:
                _shrink_head(value, width, num_classes)
    elif isinstance(cfg, list):
        for item in cfg:
            _shrink_head(item, width, num_classes)


def save_random_checkpoint(model_cfg: dict, path: str, seed: Optional[int] = 0) -> str:
    """Build ``model_cfg`` with random weights and save a plain ``{'state_dict': ...}`` at ``path``.

    Stands in for a model-zoo teacher checkpoint (loadable with ``weights_only=True``).
    """
    if seed is not None:
        torch.manual_seed(seed)
    model = MODELS.build(copy.deepcopy(model_cfg))
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return path
