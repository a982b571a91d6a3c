"""Model configs of a distiller's student and teacher: a dict, a built module, or a config file.

``dict(cfg_path='mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py', **overrides)`` (MMRazor's
convention) names the ``model`` of a config file, here or packaged (``package::path``, found by
mmengine's own :func:`mmengine.hub.get_config`), with ``overrides`` merged in.
"""
import copy
import os.path as osp
from typing import Union

import torch.nn as nn
from mmengine.config import Config, ConfigDict
from mmengine.hub import get_config
from mmengine.registry import Registry
from mmengine.utils import is_installed


def load_model_cfg(cfg_path: str) -> ConfigDict:
    """The ``model`` of a config file; ``'mmdet::path.py'`` names a package's packaged config."""
    if '::' in cfg_path:
        package = cfg_path.split('::', 1)[0]
        if not is_installed(package):  # get_config would try to pip-install it
            raise FileNotFoundError(f'cfg_path {cfg_path!r}: package {package!r} is not installed')
        try:
            return get_config(cfg_path).model
        except FileNotFoundError as error:
            raise FileNotFoundError(f'cfg_path {cfg_path!r}: {error}') from error
    if not osp.isfile(cfg_path):
        raise FileNotFoundError(f'cfg_path {cfg_path!r}: no config file there')
    return Config.fromfile(cfg_path).model


def resolve_model_cfg(cfg: Union[dict, nn.Module], key: str) -> Union[ConfigDict, nn.Module]:
    """A model config, where ``dict(cfg_path=..., **overrides)`` becomes the ``model`` of that
    config file with ``overrides`` merged in (mmengine merge rules, ``_delete_`` included).
    Built modules pass through.

    Args:
        cfg (dict | nn.Module): the config value.
        key (str): its config key, for errors (``'model.teacher'``).
    """
    if isinstance(cfg, nn.Module):
        return cfg
    if not isinstance(cfg, dict):
        raise TypeError(f'`{key}` must be a model config dict, got {type(cfg).__name__}')
    cfg = copy.deepcopy(dict(cfg))
    if 'cfg_path' not in cfg:
        return ConfigDict(cfg)
    model = load_model_cfg(cfg.pop('cfg_path'))
    model.merge(cfg)
    return model


def build_model(cfg: Union[dict, nn.Module], registry: Registry) -> nn.Module:
    """Build a resolved model config, or pass a built module through."""
    return cfg if isinstance(cfg, nn.Module) else registry.build(cfg)
