"""Let mmengine's Runner load its own training checkpoints on torch >= 2.6, and nothing more.

torch 2.6 made ``torch.load(weights_only=True)`` the default. mmengine 0.10.7 calls ``torch.load``
without the argument, while a checkpoint written by the Runner stores Python objects (the message
hub's ``HistoryBuffer``, numpy scalars): ``--resume`` and ``load_from`` fail on torch 2.6+.
Model-zoo checkpoints (plain state dicts, e.g. teachers) load with the safe loader and must keep
doing so; switching it off for the whole process would be the wrong depth for the fix.

The fix: mmengine's local-file checkpoint loader is replaced by one that passes ``weights_only``
explicitly (the safe loader, unless the caller is inside :func:`trusted_checkpoints`), and only
``Runner.load_checkpoint`` (the path of ``resume`` and ``load_from``: files the user hands the
Runner, usually its own) runs inside that context. Everything else (teachers, ``init_cfg``
pretrained weights, URLs) keeps ``weights_only=True``.
"""
import contextlib
import contextvars
import functools
import os.path as osp
from typing import Any, Callable, Iterator, Optional, Union

import torch
from mmengine.runner import Runner
from mmengine.runner.checkpoint import CheckpointLoader

_TRUSTED = contextvars.ContextVar('vkd_mmdet_trusted_checkpoint', default=False)


@contextlib.contextmanager
def trusted_checkpoints() -> Iterator[None]:
    """Within this context, mmengine loads local checkpoints with ``weights_only=False``.

    Only for files the user vouches for: unpickling runs arbitrary code.
    """
    token = _TRUSTED.set(True)
    try:
        yield
    finally:
        _TRUSTED.reset(token)


def load_from_local(filename: str,
                    map_location: Optional[Union[str, Callable]] = None) -> Any:
    """mmengine's local loader, with ``weights_only`` stated instead of left to torch's default."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return torch.load(filename, map_location=map_location, weights_only=not _TRUSTED.get())


def _run_trusted(method: Callable) -> Callable:

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with trusted_checkpoints():
            return method(*args, **kwargs)

    wrapper.__vkd_trusted__ = True
    return wrapper


def install_trusted_runner_checkpoints() -> None:
    """Apply the fix (idempotent; called by ``import vkd_mmdet``)."""
    if getattr(Runner.load_checkpoint, '__vkd_trusted__', False):
        return
    CheckpointLoader.register_scheme(prefixes='', force=True)(load_from_local)
    Runner.load_checkpoint = _run_trusted(Runner.load_checkpoint)
