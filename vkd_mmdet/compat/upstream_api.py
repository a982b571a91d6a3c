"""The one check behind every undocumented upstream API vkd_mmdet cannot avoid.

Each such use sits in the compatibility module of its package (:mod:`vkd_mmdet.compat.torch`,
``.mmengine``, ``.mmdet``, ``.mmpretrain``), which states the upstream versions it was checked with.
Through :func:`upstream_attribute` a missing attribute or a changed signature becomes one
:class:`UpstreamAPIError` naming the package, its installed version, the attribute and what
vkd_mmdet needs it for, instead of an ``AttributeError`` deep inside a training step or, worse, a
call that still runs but means something else.
"""
import inspect
import types
from importlib import metadata
from typing import Any, Optional, Sequence


class UpstreamAPIError(RuntimeError):
    """An undocumented upstream API that vkd_mmdet relies on is missing or has another
    signature."""


def upstream_attribute(obj: Any, path: str, package: str, checked: str,
                       params: Optional[Sequence[str]] = None, needed_for: str = '') -> Any:
    """``obj.<path>``, an undocumented API of ``package``, after checking it is still there.

    With ``params`` the attribute must also be a callable whose leading parameters have exactly
    these names (``self`` excluded for a bound method) and whose other parameters are all
    optional: the adapter's positional call binds as it did in the checked versions.

    Args:
        obj (object): the upstream object, e.g. a ``StandardRoIHead``, a class or a module.
        path (str): dotted attribute path from ``obj``, e.g. ``'layers.head_dist'``.
        package (str): the distribution that defines it, e.g. ``'mmdet'``.
        checked (str): the versions of ``package`` the adapter was checked with.
        params (Sequence[str], optional): expected leading parameter names.
        needed_for (str): what vkd_mmdet uses it for, for the error message.

    Returns:
        The attribute.

    Raises:
        UpstreamAPIError: when the attribute is missing or its signature differs.
    """
    value = obj
    for name in path.split('.'):
        if not hasattr(value, name):
            raise _error(obj, path, package, checked, 'is missing', needed_for)
        value = getattr(value, name)
    if params is not None:
        try:
            signature = inspect.signature(value)
        except (TypeError, ValueError):  # not callable, or a builtin without a signature
            raise _error(obj, path, package, checked,
                         f'should be a callable, got {type(value).__name__}',
                         needed_for) from None
        names = list(signature.parameters)
        rest = list(signature.parameters.values())[len(params):]
        required = [p.name for p in rest if p.default is inspect.Parameter.empty
                    and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        if names[:len(params)] != list(params) or required:
            raise _error(obj, path, package, checked,
                         f'should take ({", ".join(params)}, <optional>...), got {signature}',
                         needed_for)
    return value


def _owner(obj: Any) -> str:
    """``torch._weights_only_unpickler`` for a module, ``Runner`` for a class or an instance."""
    return obj.__name__ if isinstance(obj, (type, types.ModuleType)) else type(obj).__name__


def _error(obj: Any, path: str, package: str, checked: str, problem: str,
           needed_for: str) -> UpstreamAPIError:
    try:
        installed = metadata.version(package)
    except metadata.PackageNotFoundError:
        installed = 'not installed'
    purpose = f' for {needed_for}' if needed_for else ''
    return UpstreamAPIError(
        f'{package} {installed}: {_owner(obj)}.{path} {problem}. vkd_mmdet relies on this '
        f'undocumented API of {package}{purpose} (checked with {package} {checked}); install a '
        f'checked version or update vkd_mmdet/compat/{package}.py')
