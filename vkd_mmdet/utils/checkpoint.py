"""The safe checkpoint loader: no pickled code runs unless the file is trusted.

``torch.load`` unpickles: a checkpoint can carry an object whose ``__reduce__`` runs arbitrary
code. ``weights_only=True`` (torch's restricted unpickler) refuses every global outside an
allow-list, so a file read that way holds data only. mmengine 0.10.7 never says which loader it
wants: its local-file loader leaves it to torch's default (unsafe before torch 2.6), and its URL
loaders go through ``torch.hub.load_state_dict_from_url``, which defaults to ``weights_only=False``
on every torch version. So a teacher, an ``init_cfg`` ``Pretrained`` checkpoint or a ``load_from``
URL ran whatever was pickled in it.

This module defines the loaders; it changes nothing in mmengine. :mod:`.safe_loading` installs
them (:data:`SAFE_SCHEMES`) into mmengine's :class:`~mmengine.runner.checkpoint.CheckpointLoader`
at one documented point; once installed:

* every scheme reads through :func:`safe_load`: local paths, ``http(s)://`` (downloaded into torch
  hub's cache, as mmengine does), ``torchvision://`` / ``modelzoo://`` / ``mmcls://`` (they resolve
  to an URL and call the ``http(s)`` loader), ``open-mmlab://`` / ``openmmlab://``, ``s3://`` /
  ``petrel://``; ``pavi://`` is refused (it can only be read by unpickling a download we cannot
  check);
* :func:`safe_load` is ``torch.load(weights_only=True)`` with the numpy globals that zoo and
  Runner checkpoints legitimately hold in ``meta`` allow-listed (scalars, arrays, dtypes; see
  :func:`numpy_safe_globals`), never more;
* the full unpickler runs only inside :func:`trusted_checkpoints`: ``Runner.load_checkpoint``
  (``resume`` / ``load_from``) of a *local* file, a distiller's ``teacher_ckpt_trusted=True``, and
  the files listed in the ``VKD_TRUSTED_CHECKPOINTS`` environment variable (comma-separated paths
  or URLs, for ``init_cfg`` checkpoints). A ``resume`` / ``load_from`` URL keeps the safe loader.

A refused file raises :class:`UnsafeCheckpointError`, naming the file and the globals it holds.

torch >= 2.6 gives ``torch.serialization.safe_globals`` to extend the allow-list for one call.
Older torch (2.1-2.5, what GPU clusters run with mmcv's prebuilt wheels) has no such API, so there
the same allow-list (torch's own, plus the numpy globals) is enforced by a restricted
:class:`pickle.Unpickler` handed to ``torch.load`` as its ``pickle_module``.
"""
import codecs
import contextlib
import contextvars
import functools
import io
import os
import os.path as osp
import pickle
import re
import types
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union
from urllib.parse import urlparse

import numpy as np
import torch
from mmengine.dist import get_dist_info
from mmengine.fileio import get_file_backend
from mmengine.runner import checkpoint as mmengine_checkpoint
from mmengine.utils import digit_version

from ..compat.mmengine import mmengine_home
from ..compat.torch import weights_only_allowed_globals

#: Environment variable: comma-separated checkpoint paths / URLs the user vouches for.
TRUSTED_ENV = 'VKD_TRUSTED_CHECKPOINTS'

# ``safe_globals`` with ``(object, name)`` pairs (one global under two names) is torch >= 2.6.
_HAS_SAFE_GLOBALS = digit_version(torch.__version__) >= digit_version('2.6.0')
_TRUSTED = contextvars.ContextVar('vkd_mmdet_trusted_checkpoint', default=False)


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds globals outside the safe loader's allow-list.

    Args:
        source (str): the path or URL as the user gave it.
        unsafe_globals (list[str]): the offending globals, where torch can list them.
        key (str, optional): the config key that named the file (``teacher_ckpt``, ...).
        how_to_trust (str, optional): the opt-in to name. Defaults to ``VKD_TRUSTED_CHECKPOINTS``.
    """

    def __init__(self, source: str, unsafe_globals: List[str], key: Optional[str] = None,
                 how_to_trust: Optional[str] = None) -> None:
        self.source = source
        self.unsafe_globals = unsafe_globals
        held = ', '.join(unsafe_globals) if unsafe_globals else 'Python objects'
        how_to_trust = how_to_trust or (
            f'add it to the environment variable {TRUSTED_ENV} (comma-separated paths / URLs), '
            'or re-save it as a plain state dict')
        super().__init__(
            f'{key or "checkpoint"} {source!r} was refused by the safe loader (torch.load('
            f'weights_only=True)): it holds {held}, and unpickling them can run arbitrary code. '
            f'If you trust the file, {how_to_trust}.')


@contextlib.contextmanager
def trusted_checkpoints() -> Iterator[None]:
    """Within this context, mmengine's loaders unpickle fully (``weights_only=False``).

    Only for files the user vouches for: unpickling runs arbitrary code.
    """
    token = _TRUSTED.set(True)
    try:
        yield
    finally:
        _TRUSTED.reset(token)


def trusted_if_local(filename: str) -> contextlib.AbstractContextManager:
    """:func:`trusted_checkpoints` for a local file (the user's own run), nothing for an URL."""
    return trusted_checkpoints() if is_local(filename) else contextlib.nullcontext()


def is_local(filename: str) -> bool:
    """Whether ``filename`` is a plain path (no ``scheme://``)."""
    return re.match(r'^[a-zA-Z][a-zA-Z0-9+.-]*://', filename) is None


def _trusted_by_env(source: str) -> bool:
    listed = [item.strip() for item in os.environ.get(TRUSTED_ENV, '').split(',')]
    return source in listed or osp.abspath(osp.expanduser(source)) in {
        osp.abspath(osp.expanduser(item)) for item in listed if item and is_local(item)}


@functools.cache
def numpy_safe_globals() -> Tuple[Tuple[Any, str], ...]:
    """The numpy globals a checkpoint's ``meta`` legitimately holds, as ``(object, name)``.

    A numpy scalar pickles as ``multiarray.scalar(dtype, bytes)``, an array as
    ``multiarray._reconstruct`` + ``ndarray.__setstate__``, a dtype as ``dtype(...)`` whose state is
    set on its class (``numpy.dtypes.Int64DType``, ...). Both spellings of the core module are
    listed (``numpy.core`` before numpy 2, ``numpy._core`` after), so a file written under either
    numpy loads under the other. None of these calls anything but numpy's own constructors.
    """
    core = np.core if np.__version__.startswith('1.') else np._core
    entries = []
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        entries += [(core.multiarray.scalar, f'{module}.scalar'),
                    (core.multiarray._reconstruct, f'{module}._reconstruct')]
    entries += [(np.ndarray, 'numpy.ndarray'), (np.dtype, 'numpy.dtype')]
    dtypes = getattr(np, 'dtypes', None)  # numpy >= 1.25
    if dtypes is not None:
        entries += [(cls, f'numpy.dtypes.{name}') for name, cls in vars(dtypes).items()
                    if isinstance(cls, type) and issubclass(cls, np.dtype)]
    return tuple(entries)


def _restricted_pickle_module() -> types.ModuleType:
    """A ``pickle_module`` for ``torch.load`` that resolves only allow-listed globals (torch < 2.6).

    The allow-list is torch's own weights-only list (tensors, storages, ``OrderedDict``, dtypes,
    ...; :func:`~vkd_mmdet.compat.torch.weights_only_allowed_globals`) plus
    :func:`numpy_safe_globals`. ``torch.load`` subclasses the
    module's ``Unpickler`` and resolves storages itself before calling ``find_class``.
    """
    allowed = weights_only_allowed_globals()
    allowed.update((name, obj) for obj, name in numpy_safe_globals())
    # numpy's protocol-2 pickles spell raw bytes as ``_codecs.encode(text, 'latin1')`` (torch >=
    # 2.6 allows it by default too).
    allowed['_codecs.encode'] = codecs.encode

    class Unpickler(pickle.Unpickler):

        def find_class(self, module: str, name: str) -> Any:
            key = f'{module}.{name}'
            if key not in allowed:
                raise pickle.UnpicklingError(f'Unsupported global: GLOBAL {key}')
            return allowed[key]

    return types.SimpleNamespace(Unpickler=Unpickler, load=pickle.load, __name__='pickle')


def _unsafe_globals(file: Any, error: Exception) -> List[str]:
    """The globals of a checkpoint that the safe loader refuses (the first one, at least)."""
    lister = getattr(torch.serialization, 'get_unsafe_globals_in_checkpoint', None)
    if lister is None or not isinstance(file, str):
        return re.findall(r'GLOBAL ([\w.]+)', str(error))[:1]
    allowed = {name for _, name in numpy_safe_globals()}
    try:
        return [name for name in lister(file) if name not in allowed]
    except Exception:  # a listing is a courtesy of the error message, never a second failure
        return []


def safe_load(file: Union[str, io.BytesIO], map_location: Any = None,
              source: Optional[str] = None) -> Any:
    """``torch.load`` that runs no pickled code, unless the file is trusted.

    Args:
        file (str | BytesIO): a local file (or the downloaded copy of ``source``).
        map_location: as for ``torch.load``.
        source (str, optional): the path / URL the user gave (for messages and
            ``VKD_TRUSTED_CHECKPOINTS``). Defaults to ``file``.

    Raises:
        UnsafeCheckpointError: the file holds globals outside the allow-list.
        RuntimeError: the file is not a readable torch checkpoint (truncated, corrupt).
    """
    source = source if source is not None else str(file)
    try:
        if _TRUSTED.get() or _trusted_by_env(source):
            return torch.load(file, map_location=map_location, weights_only=False)
        if _HAS_SAFE_GLOBALS:
            with torch.serialization.safe_globals(list(numpy_safe_globals())):
                return torch.load(file, map_location=map_location, weights_only=True)
        return torch.load(file, map_location=map_location, weights_only=False,
                          pickle_module=_restricted_pickle_module())
    except pickle.UnpicklingError as error:
        raise UnsafeCheckpointError(source, _unsafe_globals(file, error)) from error
    except RuntimeError as error:
        if 'PytorchStreamReader' not in str(error) and 'zip archive' not in str(error):
            raise
        raise RuntimeError(f'checkpoint {source!r} is not a readable torch checkpoint (cut short '
                           f'by a killed job or a failed download?): {error}') from error


def load_from_local(filename: str, map_location: Any = None) -> Any:
    """mmengine's local-file scheme, through :func:`safe_load`."""
    path = osp.expanduser(filename)
    if not osp.isfile(path):
        raise FileNotFoundError(f'{filename} can not be found.')
    return safe_load(path, map_location, source=filename)


def _download(url: str, model_dir: Optional[str], progress: bool) -> str:
    """The cached copy of ``url`` where ``torch.hub.load_state_dict_from_url`` keeps it."""
    model_dir = model_dir or osp.join(torch.hub.get_dir(), 'checkpoints')
    os.makedirs(model_dir, exist_ok=True)
    cached = osp.join(model_dir, osp.basename(urlparse(url).path))
    if not osp.exists(cached):
        torch.hub.download_url_to_file(url, cached, progress=progress)  # temp file, then rename
    return cached


def load_from_http(filename: str, map_location: Any = None, model_dir: Optional[str] = None,
                   progress: bool = os.isatty(0)) -> Any:
    """mmengine's ``http(s)`` scheme (rank 0 downloads first; torch hub's cache), safely read."""
    rank, world_size = get_dist_info()
    if rank == 0:
        cached = _download(filename, model_dir, progress)
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            cached = _download(filename, model_dir, progress)
    return safe_load(cached, map_location, source=filename)


def load_from_openmmlab(filename: str, map_location: Any = None) -> Any:
    """mmengine's ``open-mmlab://`` scheme: a name in mmengine's model list, then URL or file."""
    prefix = 'open-mmlab://' if filename.startswith('open-mmlab://') else 'openmmlab://'
    name = filename[len(prefix):]
    name = mmengine_checkpoint.get_deprecated_model_names().get(name, name)
    url = mmengine_checkpoint.get_external_models()[name]
    if url.startswith(('http://', 'https://')):
        return load_from_http(url, map_location=map_location)
    return load_from_local(osp.join(mmengine_home(), url), map_location)


def load_from_ceph(filename: str, map_location: Any = None, backend: str = 'petrel') -> Any:
    """mmengine's ``s3://`` / ``petrel://`` scheme, safely read."""
    file_backend = get_file_backend(filename, backend_args={'backend': backend})
    with io.BytesIO(file_backend.get(filename)) as buffer:
        return safe_load(buffer, map_location, source=filename)


def load_from_pavi(filename: str, map_location: Any = None) -> Any:
    """``pavi://`` is refused unless trusted: its download cannot be checked before unpickling."""
    if not (_TRUSTED.get() or _trusted_by_env(filename)):
        raise UnsafeCheckpointError(filename, [])
    return mmengine_checkpoint.load_from_pavi(filename, map_location)


#: Our loader for each mmengine scheme prefix. ``torchvision://``, ``modelzoo://`` and
#: ``mmcls://`` keep mmengine's loaders: they resolve the name and call ``load_from_http`` of
#: mmengine's module, which is replaced by ours.
SAFE_SCHEMES: Dict[Tuple[str, ...], Callable] = {
    ('',): load_from_local,
    ('http://', 'https://'): load_from_http,
    ('open-mmlab://', 'openmmlab://'): load_from_openmmlab,
    (r'(\S+\:)?s3://', r'(\S+\:)?petrel://'): load_from_ceph,
    ('pavi://',): load_from_pavi,
}
#: Schemes whose mmengine loader only resolves a name to an URL and calls ``load_from_http``.
URL_ALIAS_SCHEMES = ('modelzoo://', 'torchvision://', 'mmcls://')
