"""One compatibility module per upstream package (:mod:`.torch`, :mod:`.mmengine`, :mod:`.mmdet`,
:mod:`.mmpretrain`): every undocumented upstream API vkd_mmdet relies on is read there, through
:func:`upstream_attribute`, and fails as one :class:`UpstreamAPIError` naming the package, its
installed version, the attribute and what vkd_mmdet needs it for.

:mod:`.mmdeploy` is of another kind: it gives mmdeploy 1.3.1 the public ``torch.onnx`` it was
written for (torch < 2.9), for the length of a conversion.

mmcv has none: vkd_mmdet uses only its public API (``ConvModule``, ``fuse_conv_bn``). The
submodules are imported where they are used, never here: :mod:`.mmpretrain` belongs to the
classification side (``import vkd_mmdet`` never imports mmpretrain).
"""
from .upstream_api import UpstreamAPIError, upstream_attribute

__all__ = ['UpstreamAPIError', 'upstream_attribute']
