"""Turn a distiller's training run into a plain model of the student's own framework.

The export is what users deploy: ``mmdet.apis.init_detector(config, checkpoint)`` loads it in a
process that never imports ``vkd_mmdet`` (no plugin types, no ``custom_imports``), and torch's
safe loader (``weights_only=True``) reads the checkpoint.
"""
import copy
import os
import os.path as osp
from typing import Any, Optional, Set, Tuple, Union

import mmengine.registry as mmengine_registry
import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import Registry
from mmengine.runner.checkpoint import CheckpointLoader

from ..utils.checkpoint import trusted_if_local
from ..utils.model_cfg import resolve_model_cfg
from ..utils.safe_loading import install_safe_loading

STUDENT_PREFIX = 'student.'
_PLUGIN = 'vkd_mmdet'


def plugin_types() -> Set[str]:
    """Names registered by ``vkd_mmdet`` in any registry (mmengine's and all their children)."""
    names: Set[str] = set()
    pending = [value for value in vars(mmengine_registry).values() if isinstance(value, Registry)]
    while pending:
        registry = pending.pop()
        names.update(name for name, cls in registry.module_dict.items()
                     if getattr(cls, '__module__', '').split('.')[0] == _PLUGIN)
        pending.extend(registry.children.values())
    return names


def _type_name(value: Any) -> str:
    return value if isinstance(value, str) else getattr(value, '__name__', '')


def _find_plugin_type(node: Any, plugin: Set[str], path: str) -> Optional[str]:
    if isinstance(node, dict):
        if _type_name(node.get('type')).split('.')[-1] in plugin:
            return path
        items = node.items()
    elif isinstance(node, (list, tuple)):
        items = ((f'[{i}]', value) for i, value in enumerate(node))
    else:
        return None
    for key, value in items:
        key = key if str(key).startswith('[') else f'.{key}'
        found = _find_plugin_type(value, plugin, f'{path}{key}')
        if found:
            return found
    return None


def student_config(cfg: Config) -> Config:
    """The distiller config ``cfg`` with the student as its model and the plugin removed.

    ``model`` becomes the resolved ``model.student`` (``cfg_path`` configs expanded); the
    ``vkd_mmdet`` entry of ``custom_imports`` and plugin hooks of ``custom_hooks`` are dropped;
    ``load_from`` / ``resume`` are cleared. Data, pipelines, evaluators and schedules are kept.

    Raises:
        ValueError: ``cfg.model`` has no ``student``, or a plugin type is left elsewhere.
    """
    cfg = copy.deepcopy(cfg)
    if not isinstance(cfg.get('model'), dict) or 'student' not in cfg.model:
        raise ValueError(f'model: expected a distiller config with a `student` (got type '
                         f'{cfg.get("model", {}).get("type")!r}); nothing to export')
    cfg.model = resolve_model_cfg(cfg.model.student, 'model.student')
    imports = cfg.get('custom_imports', {}).get('imports', [])
    imports = [imports] if isinstance(imports, str) else list(imports)
    kept = [name for name in imports if name.split('.')[0] != _PLUGIN]
    if kept:
        cfg.custom_imports.imports = kept
    else:
        cfg.pop('custom_imports', None)
    plugin = plugin_types()
    if 'custom_hooks' in cfg:
        cfg.custom_hooks = [hook for hook in cfg.custom_hooks
                            if _type_name(hook.get('type')).split('.')[-1] not in plugin]
    cfg.load_from, cfg.resume = None, False
    left = _find_plugin_type(cfg.to_dict(), plugin, 'cfg')
    if left:
        raise ValueError(f'{left}: a vkd_mmdet type is left in the student config; the exported '
                         'config must load without the plugin')
    return cfg


def _plain(value: Any) -> Any:
    """``value`` restricted to what ``torch.load(weights_only=True)`` accepts; None otherwise."""
    if value is None or isinstance(value, (str, bool, int, float, torch.Tensor)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        items = [_plain(item) for item in value]
        return type(value)(item for item in items if item is not None)
    if isinstance(value, dict):
        items = {key: _plain(item) for key, item in value.items() if isinstance(key, str)}
        return {key: item for key, item in items.items() if item is not None}
    return None


def student_checkpoint(checkpoint: dict, config_text: Optional[str] = None) -> dict:
    """``{'meta', 'state_dict'}`` of the student from a distiller (training) checkpoint.

    Keys ``student.*`` lose their prefix (mmdet's own names); projectors and other distiller
    parts are dropped; ``meta`` keeps only plain values (the message hub, optimizer and scheduler
    states go). ``config_text`` replaces ``meta['cfg']`` (the distiller's config).

    Raises:
        KeyError: the checkpoint has no ``student.`` weights.
    """
    state_dict = checkpoint.get('state_dict', checkpoint)
    student = {key[len(STUDENT_PREFIX):]: value.detach().cpu().clone()
               for key, value in state_dict.items() if key.startswith(STUDENT_PREFIX)}
    if not student:
        raise KeyError(f'no `{STUDENT_PREFIX}*` weights in the checkpoint: expected one written '
                       'by a distiller run')
    meta = _plain(checkpoint.get('meta', {})) or {}
    if config_text is not None:
        meta['cfg'] = config_text
    return dict(meta=meta, state_dict=student)


def export_student(config: Union[str, Config],
                   checkpoint: str,
                   out_dir: str,
                   name: Optional[str] = None) -> Tuple[str, str]:
    """Write ``<name>.py`` (student config) and ``<checkpoint name>_student.pth`` to ``out_dir``.

    ``checkpoint`` is a distiller training checkpoint; a local one is unpickled fully (as
    ``--resume`` does): pass only your own files. An URL is read with the safe loader. The written
    checkpoint loads with the safe loader.

    Args:
        config (str | Config): the distiller config (a path or a loaded Config).
        checkpoint (str): the distiller checkpoint (path or URL).
        out_dir (str): output folder (created).
        name (str, optional): the config's file name without ``.py``. Defaults to
            ``<distiller config name>_student``.

    Returns:
        tuple[str, str]: paths of the written config and checkpoint.

    Example:
        >>> cfg_path, ckpt_path = export_student(
        ...     'configs/vkd/retinanet_r101_r18.py', 'work_dirs/x/iter_8.pth', 'export/')
        >>> model = mmdet.apis.init_detector(cfg_path, ckpt_path)
    """
    cfg = Config.fromfile(config) if isinstance(config, str) else config
    if name is None:
        stem = osp.splitext(osp.basename(cfg.filename or 'model'))[0]
        name = f'{stem}_student'
    student_cfg = student_config(cfg)
    # A local training checkpoint is the user's own (as for --resume); an URL keeps the safe loader.
    install_safe_loading()
    with trusted_if_local(checkpoint):
        loaded = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')
    os.makedirs(out_dir, exist_ok=True)
    cfg_path = osp.join(out_dir, f'{name}.py')
    student_cfg.dump(cfg_path)
    ckpt_name = osp.splitext(osp.basename(checkpoint))[0]
    ckpt_path = osp.join(out_dir, f'{ckpt_name}_student.pth')
    torch.save(student_checkpoint(loaded, student_cfg.pretty_text), ckpt_path)
    return cfg_path, ckpt_path
