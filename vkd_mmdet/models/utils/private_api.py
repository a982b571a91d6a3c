"""The one check behind every private upstream API vkd_mmdet cannot avoid.

Each such use sits in a small named adapter (:mod:`.mmdet_adapters`, :mod:`.mmpretrain_adapters`)
that states the upstream versions it was checked with. Through :func:`private_attribute` a
missing attribute or a changed signature becomes one :class:`PrivateAPIError` naming the
package, its installed version and the attribute, instead of an ``AttributeError`` deep inside a
training step or, worse, a call that still runs but means something else.
"""
import inspect
from importlib import metadata
from typing import Any, Optional, Sequence


class PrivateAPIError(RuntimeError):
    """An upstream private API that vkd_mmdet relies on is missing or has another signature."""


def private_attribute(obj: Any, path: str, package: str, checked: str,
                      params: Optional[Sequence[str]] = None) -> Any:
    """``obj.<path>``, a private API of ``package``, after checking it is still there.

    With ``params`` the attribute must also be a callable whose leading parameters have exactly
    these names (``self`` excluded for a bound method) and whose other parameters are all
    optional: the adapter's positional call binds as it did in the checked versions.

    Args:
        obj (object): the upstream object, e.g. a ``StandardRoIHead``.
        path (str): dotted attribute path from ``obj``, e.g. ``'layers.head_dist'``.
        package (str): the distribution that defines it, e.g. ``'mmdet'``.
        checked (str): the versions of ``package`` the adapter was checked with.
        params (Sequence[str], optional): expected leading parameter names.

    Returns:
        The attribute.

    Raises:
        PrivateAPIError: when the attribute is missing or its signature differs.
    """
    value = obj
    for name in path.split('.'):
        if not hasattr(value, name):
            raise _error(obj, path, package, checked, 'is missing')
        value = getattr(value, name)
    if params is not None:
        try:
            signature = inspect.signature(value)
        except (TypeError, ValueError):  # not callable, or a builtin without a signature
            raise _error(obj, path, package, checked,
                         f'should be a callable, got {type(value).__name__}') from None
        names = list(signature.parameters)
        rest = list(signature.parameters.values())[len(params):]
        required = [p.name for p in rest if p.default is inspect.Parameter.empty
                    and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        if names[:len(params)] != list(params) or required:
            raise _error(obj, path, package, checked,
                         f'should take ({", ".join(params)}, <optional>...), got {signature}')
    return value


def _error(obj: Any, path: str, package: str, checked: str, problem: str) -> PrivateAPIError:
    try:
        installed = metadata.version(package)
    except metadata.PackageNotFoundError:
        installed = 'not installed'
    return PrivateAPIError(
        f'{package} {installed}: {type(obj).__name__}.{path} {problem}. vkd_mmdet relies on '
        f'this private API of {package} (checked with {package} {checked}); install a checked '
        f'version or update the adapter in vkd_mmdet/models/utils/{package}_adapters.py')
