"""Every process-wide change vkd_mmdet makes to mmengine, in one place, made at one documented
point.

``import vkd_mmdet`` changes nothing in mmengine. :func:`install_safe_loading` makes these
changes, once per process, and logs once that they are active:

1. every scheme of mmengine's ``CheckpointLoader`` reads through the safe loader
   (:data:`~.checkpoint.SAFE_SCHEMES`: no pickled code runs unless trusted);
2. ``mmengine.runner.checkpoint.load_from_http``, which mmengine's own ``torchvision://``,
   ``modelzoo://`` and ``mmcls://`` loaders call, becomes the safe
   :func:`~.checkpoint.load_from_http`;
3. ``Runner.load_checkpoint`` (``load_from`` and ``resume``) is wrapped once: a *local* file loads
   trusted (the Runner's own checkpoints store its message hub, which the safe loader refuses; an
   URL keeps the safe loader), and a distiller's
   :class:`~.checkpoint_mismatch.CheckpointMismatchError` names the file.

**Where it is installed** (the documented point): before the first checkpoint vkd_mmdet loads.

* Building any distiller: its teacher loads through
  :func:`~.teacher_checkpoint.load_teacher_checkpoint`, which installs first. mmengine builds the
  model inside ``Runner.from_cfg``, before ``init_cfg`` weights, ``load_from`` or ``resume`` load
  anything, so mmdet's / mmpretrain's own ``tools/train.py`` and ``tools/test.py`` with
  ``custom_imports=dict(imports=['vkd_mmdet'])`` get it.
* vkd_mmdet's ``tools/train.py`` and ``tools/test.py`` at start (any config, a distiller's or
  not), and :func:`vkd_mmdet.apis.export_student`; the other tools build a distiller or load a
  teacher.
* Anything else (a Runner without a distiller, a script of your own): call
  ``vkd_mmdet.install_safe_loading()`` yourself.

**Switch** it off with ``VKD_SAFE_LOADING=0`` in the environment: :func:`install_safe_loading`
then changes nothing, and warns once that mmengine loads checkpoints with its own loaders
(``weights_only=False`` for URLs on every torch; and on torch >= 2.6 mmengine 0.10.7 cannot
``resume`` from its own checkpoints).
"""
import functools
import logging
import os
from typing import Callable, Optional

from mmengine.logging import print_log
from mmengine.runner import Runner
from mmengine.runner import checkpoint as mmengine_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader

from .checkpoint import SAFE_SCHEMES, load_from_http, trusted_if_local
from .checkpoint_mismatch import CheckpointMismatchError

#: Environment variable: ``0`` / ``off`` / ``false`` leaves mmengine's loaders alone.
SWITCH_ENV = 'VKD_SAFE_LOADING'
_ON, _OFF = ('1', 'on', 'true', 'yes'), ('0', 'off', 'false', 'no')

#: None until :func:`install_safe_loading` first runs; then whether it installed.
_installed: Optional[bool] = None


def safe_loading_requested() -> bool:
    """Whether ``VKD_SAFE_LOADING`` asks for safe loading (the default, unset or empty).

    Raises:
        ValueError: any value but ``1/on/true/yes`` or ``0/off/false/no`` (any case).
    """
    value = os.environ.get(SWITCH_ENV, '').strip().lower()
    if value in _OFF:
        return False
    if value and value not in _ON:
        raise ValueError(f'environment variable {SWITCH_ENV}={os.environ[SWITCH_ENV]!r}: expected '
                         f'one of {", ".join(_ON)} (safe loading, the default) or '
                         f'{", ".join(_OFF)} (leave mmengine\'s loaders alone)')
    return True


def _runner_load_checkpoint(load_checkpoint: Callable) -> Callable:
    """``Runner.load_checkpoint``: a local file trusted, a mismatch error naming the file."""

    @functools.wraps(load_checkpoint)
    def wrapper(self, filename: str, *args, **kwargs):
        try:
            with trusted_if_local(filename):
                return load_checkpoint(self, filename, *args, **kwargs)
        except CheckpointMismatchError as error:
            raise CheckpointMismatchError(f'{filename}: {error}') from None

    return wrapper


def install_safe_loading() -> bool:
    """Make the changes listed in :mod:`vkd_mmdet.utils.safe_loading` to mmengine, once per
    process (later calls do nothing), unless ``VKD_SAFE_LOADING=0``; log once either way.

    Returns:
        bool: whether safe loading is active.
    """
    global _installed
    if _installed is not None:
        return _installed
    if not safe_loading_requested():
        _installed = False
        print_log(f'vkd_mmdet: safe checkpoint loading is OFF ({SWITCH_ENV}='
                  f'{os.environ[SWITCH_ENV]}): mmengine loads every checkpoint with its own '
                  'loaders, which unpickle URLs fully (pickled code runs)',
                  logger='current', level=logging.WARNING)
        return False
    for prefixes, loader in SAFE_SCHEMES.items():
        CheckpointLoader.register_scheme(prefixes=list(prefixes), loader=loader, force=True)
    mmengine_checkpoint.load_from_http = load_from_http
    Runner.load_checkpoint = _runner_load_checkpoint(Runner.load_checkpoint)
    _installed = True
    print_log('vkd_mmdet: safe checkpoint loading is active (vkd_mmdet.utils.safe_loading): '
              "mmengine's checkpoint schemes read with torch.load(weights_only=True) unless "
              f'trusted; Runner.load_checkpoint trusts local files; {SWITCH_ENV}=0 turns it off',
              logger='current', level=logging.INFO)
    return True
